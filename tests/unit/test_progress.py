"""Progress on stderr: tqdm's bar on a terminal, plain lines in logs or without tqdm."""

from __future__ import annotations

import io

import pytest

from offline import progress as progress_mod
from offline.progress import Progress, format_count, format_duration, format_rate


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class BrokenStream(io.StringIO):
    def write(self, s: str) -> int:
        raise OSError("broken pipe")


@pytest.fixture
def clock(monkeypatch):
    """A controllable monotonic clock for the progress module."""
    now = [1000.0]
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: now[0])
    return now


def test_non_tty_prints_plain_lines_with_count_rate_and_eta(clock):
    out = io.StringIO()
    with Progress(total=1000, desc="simulate", unit="tx", stream=out, interval=5.0) as bar:
        clock[0] += 1.0
        bar.update(100)  # before the interval: nothing yet
        assert out.getvalue() == ""
        clock[0] += 4.0
        bar.update(400)  # 500 in 5 s = 100/s, 500 left = 5 s
        first = out.getvalue()
        assert first == "simulate: 50.0% 500/1,000 tx 100/s ETA 5s\n"
        clock[0] += 5.0
        bar.update(500)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert len(lines) == 3  # the timed line at 10 s and the final line at close
    assert "1,000/1,000" in lines[-1] and "100.0%" in lines[-1] and "elapsed 10s" in lines[-1]


def test_non_tty_default_is_quiet_until_the_end():
    out = io.StringIO()
    with Progress(total=50_000, stream=out) as bar:
        for _ in range(50):
            bar.update(1000)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert "50,000/50,000" in lines[0]


def test_tty_draws_a_tqdm_bar() -> None:
    pytest.importorskip("tqdm")
    out = FakeTTY()
    bar = Progress(total=200, desc="x", unit="tx", stream=out)
    assert bar.tty
    for _ in range(4):
        bar.update(50)
    bar.close()
    text = out.getvalue()
    assert "\r" in text and text.endswith("\n") and text.count("\n") == 1
    assert "x:" in text and "200/200" in text and "100%" in text and "tx/s" in text
    assert bar.count == 200


def test_tty_without_tqdm_prints_plain_lines(monkeypatch, clock):
    monkeypatch.setattr(progress_mod, "_tqdm_class", lambda: None)
    out = FakeTTY()
    with Progress(total=10, desc="x", stream=out) as bar:
        assert not bar.tty
        clock[0] += 2.0
        bar.update(10)
    assert out.getvalue() == "x: 100.0% 10/10 5.0/s elapsed 2s\n"


def test_disabled_on_a_tty_draws_no_bar() -> None:
    out = FakeTTY()
    with Progress(total=10, stream=out, enabled=False) as bar:
        bar.update(10)
    assert not bar.tty and out.getvalue() == ""


def test_unknown_total_shows_count_and_rate(clock):
    out = io.StringIO()
    with Progress(desc="kafka", unit="tx", stream=out) as bar:
        clock[0] += 2.0
        bar.update(4000)
    assert out.getvalue() == "kafka: 4,000 tx 2000/s elapsed 2s\n"


def test_disabled_writes_nothing_but_still_counts():
    out = FakeTTY()
    with Progress(total=10, stream=out, enabled=False, interval=0) as bar:
        bar.update(7)
    assert out.getvalue() == ""
    assert bar.count == 7


def test_close_is_idempotent_and_runs_on_exceptions():
    out = io.StringIO()
    with pytest.raises(RuntimeError), Progress(total=5, stream=out) as bar:
        bar.update(2)
        raise RuntimeError("boom")
    bar.close()
    assert out.getvalue().count("\n") == 1 and "2/5" in out.getvalue()


def test_broken_stream_disables_the_bar():
    bar = Progress(total=3, stream=BrokenStream(), interval=0)
    bar.update(1)  # must not raise
    assert not bar.enabled
    bar.close()


def test_default_stream_is_stderr(capsys):
    with Progress(total=3, desc="d") as bar:
        bar.update(3)
    captured = capsys.readouterr()
    assert captured.out == "" and "3/3" in captured.err


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (4.4, "4s"),
        (59.6, "1m00s"),
        (75, "1m15s"),
        (3720, "1h02m"),
        (-3, "0s"),
        (float("inf"), "?"),
        (float("nan"), "?"),
    ],  # fmt: skip
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_format_rate_and_count():
    assert format_rate(12.345) == "12.3"
    assert format_rate(950) == "950"
    assert format_rate(12_345) == "12.3k"
    assert format_rate(2_500_000) == "2.50M"
    assert format_count(1234567) == "1,234,567"
