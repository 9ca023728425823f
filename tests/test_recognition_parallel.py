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
    return clip, np.concatenate([clip.samples] * 6)  # 132 s: many phone-loop pieces


def test_two_processes_give_the_same_phones(long_speech):
    clip, samples = long_speech
    try:
        phones.set_workers(1)
        serial = phones.recognize(samples, clip.rate)
        phones.set_workers(2)
        parallel = phones.recognize(samples, clip.rate)
    finally:
        phones.set_workers(1)
    spans = phones._recognize_spans(phones._prepare(samples, clip.rate), 100)
    lengths = np.diff(np.array(spans), axis=1).ravel() / phones.RATE
    assert len(spans) >= 132 / phones.RECOGNIZE_PIECE_S
    assert lengths.max() <= phones.RECOGNIZE_PIECE_S and lengths[:-1].min() >= phones.RECOGNIZE_PIECE_S - phones.RECOGNIZE_SEARCH_S
    assert parallel == serial and len(serial) > 500


@pytest.mark.parametrize("engine, workers", [("phonetic", 1), ("phonetic", 2), ("neural", 1), ("neural_fast", 1)])
def test_cancel_stops_every_engine_on_ten_minutes_within_a_second(long_speech, engine, workers):
    """Bound, not a race: with workers the cancel stops them at once; in one process (the
    add-on's UI) it lands at the end of the phone-loop piece or network chunk at hand."""
    clip, samples = long_speech
    ten_minutes = speech_from_array(np.concatenate([samples] * 5)[: 600 * clip.rate], clip.rate)
    flag = threading.Event()
    timer = threading.Timer(0.5, flag.set)
    phones.set_workers(workers)
    try:
        timer.start()
        started = time.perf_counter()
        with pytest.raises(pipeline.Cancelled):
            pipeline.perform(ten_minutes, 30.0, pipeline.Settings(engine=engine), cancelled=flag.is_set)
        after_cancel = time.perf_counter() - started - 0.5
    finally:
        timer.cancel()
        phones.set_workers(1)
    assert after_cancel < 1.0, after_cancel
    print(f"{engine}, workers={workers}: stopped {after_cancel:.2f} s after the cancel (10 min of speech)")
