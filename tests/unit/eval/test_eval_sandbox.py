"""Generated code runs in a separate, limited process: passes, failures, infinite loops and memory hogs."""

from __future__ import annotations

from moemix.eval.sandbox import FAILED, PASSED, run_program, run_programs


def test_correct_program_passes():
    result = run_program("def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\n", timeout=20)
    assert result.status == PASSED and result.passed and result.returncode == 0


def test_wrong_program_fails_with_its_error():
    result = run_program("def add(a, b):\n    return a - b\n\nassert add(2, 3) == 5, 'add is wrong'\n", timeout=20)
    assert result.status == FAILED and not result.passed
    assert result.returncode == 1
    assert "AssertionError: add is wrong" in result.stderr


def test_syntax_error_fails():
    result = run_program("def f(:\n", timeout=20)
    assert result.status == FAILED and "SyntaxError" in result.stderr


def test_memory_limit_stops_a_hog():
    result = run_program("x = bytearray(2 * 1024 ** 3)\n", timeout=20, memory_mb=256)
    assert result.status == FAILED and "MemoryError" in result.stderr


def test_program_runs_in_its_own_folder_not_ours(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_program(
        "import os\nopen('left_behind.txt', 'w').write('x')\nassert os.getcwd() != %r\n" % str(tmp_path), timeout=20
    )
    assert result.passed
    assert not (tmp_path / "left_behind.txt").exists()


def test_runaway_output_is_capped():
    result = run_program("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", timeout=20)
    assert result.status == FAILED  # the file-size limit ends it (SIGXFSZ) long before the deadline


def test_many_programs_keep_their_order():
    programs = [f"assert {i} % 2 == 0\n" for i in range(6)]
    statuses = [r.status for r in run_programs(programs, timeout=20, workers=3)]
    assert statuses == [PASSED, FAILED] * 3
