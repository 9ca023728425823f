"""tools/support_table.py on small hand-made JUnit XML in the shape pytest writes it:
counts, skip reasons with their counts, each feature's result, and the README markers
(text outside them byte-identical; no markers, README untouched)."""
import pytest

from flame_lipsync.tools import support_table as st

SKIP_AUD = "bpy 4.2.23 LTS is built without audaspace (no `aud`): sound strips cannot be added"
RUN_42 = f"""<?xml version="1.0" encoding="utf-8"?><testsuites>
<testsuite name="pytest" errors="1" failures="1" skipped="4" tests="8" time="89.4"
 timestamp="2026-12-03T17:02:02.718023+00:00" hostname="vm">
<properties><property name="python_version" value="3.11.7" />
<property name="blender_version" value="4.2.23 LTS" /></properties>
<testcase classname="" name="tests.blender.test_extension_install" time="0.000">
 <skipped message="collection skipped">('/x/tests/blender/test_extension_install.py', 42, 'Skipped: the install test runs from .venv')</skipped></testcase>
<testcase classname="tests.blender.test_strip_api" name="test_trimmed_moved_strip_spans_where_it_plays" time="0.0">
 <skipped type="pytest.skip" message="{SKIP_AUD}">/x/test_strip_api.py:87: {SKIP_AUD}</skipped></testcase>
<testcase classname="tests.blender.test_strip_api" name="test_new_and_old_api_agree[set-new]" time="0.0">
 <skipped type="pytest.skip" message="{SKIP_AUD}">/x/test_strip_api.py:99: {SKIP_AUD}</skipped></testcase>
<testcase classname="tests.blender.test_bake" name="test_shape_key_bake_evaluates_at_frames[a]" time="1.0" />
<testcase classname="tests.blender.test_bake" name="test_mesh_cache_bake_plays_exact_frames" time="1.0">
 <failure message="AssertionError: frame 3">assert 1 == 2</failure></testcase>
<testcase classname="tests.blender.test_operators" name="test_undo_restores_the_scene" time="1.0">
 <error message="failed on setup with &quot;OSError&quot;">OSError</error></testcase>
<testcase classname="tests.blender.test_operators.TestCli" name="test_cli_bake" time="1.0">
 <skipped type="pytest.xfail" message="4.2 flips the axis by flag">reason</skipped></testcase>
<testcase classname="tests.blender.test_brand_new" name="test_something" time="1.0" />
</testsuite></testsuites>"""
# No properties (a run without the conftest hook): the version comes from the file's name.
RUN_50 = """<?xml version="1.0" encoding="utf-8"?><testsuites>
<testsuite name="pytest" errors="0" failures="0" skipped="0" tests="3" time="500.0">
<testcase classname="tests.test_phones" name="test_a" time="0.1" />
<testcase classname="tests.blender.test_strip_api" name="test_new_and_old_api_agree[x]" time="0.1" />
<testcase classname="tests.blender.test_bake" name="test_pc2_roundtrip_array_and_chunks" time="0.1" />
</testsuite></testsuites>"""


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "test-results"
    folder.mkdir()
    (folder / "blender-4.2.xml").write_text(RUN_42)
    (folder / "blender-5.0.xml").write_text(RUN_50)
    return folder


def test_counts_versions_and_order(results):
    new, old = st.read_runs(results)
    assert (new.blender, new.python) == ("5.0", "?")  # from the file's name
    assert (old.blender, old.python) == ("4.2.23 LTS", "3.11.7")
    assert {o: old.count(o) for o in ("passed", "skipped", "failed", "xfailed")} == \
        {"passed": 2, "skipped": 3, "failed": 2, "xfailed": 1}
    assert st.scope(new) == "all of tests/" and st.scope(old) == "tests/blender"
    table = st.render([new, old])
    assert "| 4.2.23 LTS | 3.11.7 | tests/blender | 2 | 3 | 2 | 1 | 1 min 29 s |" in table
    assert "| 5.0 | ? | all of tests/ | 3 | 0 | 0 | 0 | 8 min 20 s |" in table


def test_skip_reasons_are_summarised_with_counts(results):
    table = st.render(st.read_runs(results))
    assert f"  - 2 × {SKIP_AUD}" in table
    assert "  - 1 × the install test runs from .venv" in table  # a module-level skip, unwrapped
    assert "  - 1 × expected failure: 4.2 flips the axis by flag" in table
    assert "  - failed: `test_bake::test_mesh_cache_bake_plays_exact_frames`" in table
    assert "- 5.0: nothing" in table


def test_each_feature_passes_fails_or_skips_per_version(results):
    rows = {line.split(" | ")[0].lstrip("| "): line.rstrip(" |").split(" | ")[1:]
            for line in st.features_table(st.read_runs(results))[2:]}
    assert rows["Sound strips (5.1+ and 4.2-5.0 API)"] == ["pass (1)", "skipped (2)"]
    assert rows["Mesh-cache bake (PC2)"] == ["pass (1)", "**FAIL** (1 of 1)"]  # told apart by name
    assert rows["Shape-key bake (ownership, undo, glTF)"] == ["–", "pass (1)"]
    assert rows["UI operators and headless CLI"] == ["–", "**FAIL** (1 of 2)"]  # a setup error fails
    assert rows["Extension zip install"] == ["–", "skipped (1)"]
    assert rows[st.CORE] == ["pass (1)", "–"]
    assert rows["test_brand_new"] == ["–", "pass (1)"]  # an unmapped file keeps its own row


def test_the_table_replaces_only_what_stands_between_the_markers(results, tmp_path):
    before = "# Add-on\r\n\r\nSupported — by test:\r\n".encode()  # CRLF and UTF-8 must survive
    after = "\r\n\r\n## Next section ✓\r\n".encode()
    readme = tmp_path / "README.md"
    readme.write_bytes(before + f"{st.START}\nhand-written, stale\n{st.END}".encode() + after)
    assert st.main(["--results", str(results), "--readme", str(readme)]) == 0
    data = readme.read_bytes()
    assert data.startswith(before + st.START.encode()) and data.endswith(st.END.encode() + after)
    assert b"stale" not in data and b"| 4.2.23 LTS | 3.11.7 |" in data
    assert st.main(["--results", str(results), "--readme", str(readme)]) == 0
    assert readme.read_bytes() == data  # a second run changes nothing
    assert not [p for p in tmp_path.iterdir() if p.name not in ("README.md", "test-results")]  # no temp left


@pytest.mark.parametrize("text", ["# Add-on\n\nno markers here\n",
                                  f"{st.END}\nout of order\n{st.START}\n"])
def test_without_markers_the_readme_is_untouched_and_the_table_printed(results, tmp_path, capsys, text):
    readme = tmp_path / "README.md"
    readme.write_text(text)
    assert st.main(["--results", str(results), "--readme", str(readme)]) == 1
    assert readme.read_text() == text
    out, err = capsys.readouterr()
    assert "| feature | 5.0 | 4.2.23 LTS |" in out
    assert "left it untouched" in err and st.START in err


def test_no_results_says_to_run_make_test(tmp_path, capsys):
    assert st.main(["--results", str(tmp_path)]) == 1
    assert "run `make test` first" in capsys.readouterr().err
