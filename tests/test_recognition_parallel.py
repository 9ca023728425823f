"""Phone-loop pieces decoded in two processes give the very phones of one process, and
a cancel stops the recogniser (workers included) on 10 minutes of speech."""
import threading
import time

import numpy as np
import pytest

from flame_lipsync import pipeline
from flame_lipsync.core import phones
from flame_lipsync.core.audio import load_speech, speech_from_array


@pytest.fixture
def long_speech(speech_dir):
    clip = load_speech(speech_dir / "speech_22s.wav")
    return clip, np.concatenate([clip.samples] * 6)  # 132 s: three phone-loop pieces


def test_two_processes_give_the_same_phones(long_speech):
    clip, samples = long_speech
    try:
        phones.set_workers(1)
        serial = phones.recognize(samples, clip.rate)
        phones.set_workers(2)
        parallel = phones.recognize(samples, clip.rate)
    finally:
        phones.set_workers(1)
    assert len(phones._recognize_spans(phones._prepare(samples, clip.rate), 100)) == 3
    assert parallel == serial and len(serial) > 500


@pytest.mark.parametrize("workers", [1, 2])
def test_cancel_stops_recognition_of_ten_minutes_within_a_piece(long_speech, workers):
    """Bound, not a race: with workers the cancel lands within 1 s; in one process
    (the add-on's UI) within one 60 s piece's decode, also well under the whole."""
    clip, samples = long_speech
    ten_minutes = speech_from_array(np.concatenate([samples] * 5)[: 600 * clip.rate], clip.rate)
    flag = threading.Event()
    timer = threading.Timer(0.5, flag.set)
    phones.set_workers(workers)
    try:
        timer.start()
        started = time.perf_counter()
        with pytest.raises(pipeline.Cancelled):
            pipeline.perform(ten_minutes, 30.0, pipeline.Settings(engine="phonetic"), cancelled=flag.is_set)
        after_cancel = time.perf_counter() - started - 0.5
    finally:
        timer.cancel()
        phones.set_workers(1)
    whole = 600 * 0.05  # the phone loop runs at about 0.05x real time here
    assert after_cancel < (1.0 if workers == 2 else whole / 3), after_cancel
    print(f"workers={workers}: stopped {after_cancel:.2f} s after the cancel")
