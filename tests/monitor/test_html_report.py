"""`monitor --html FILE`: one self-contained page (no script, no request to anywhere) with a
histogram per drifted feature, which headless Chromium renders."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.monitor.support import batch, copy_example, invoke, iris_rows, write_capture
from tests.support import require

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def test_the_html_report_is_self_contained_and_renders_in_chromium(tmp_path: Path) -> None:
    repo = copy_example(tmp_path / "repo")
    capture = tmp_path / "capture"
    write_capture(capture, batch(iris_rows(1000, seed=2, shift=(0, 0, 2.5, 1.0))))
    page = tmp_path / "report" / "iris.html"
    result = invoke(
        "monitor", "iris", "--env", "staging", "--repo", str(repo), "--capture", str(capture), "--html", str(page)
    )
    assert result.code == 1 and f"wrote {page}" in result.stderr, result.output
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in text
    for needle in ("<script", "src=", "@import", "<?xml", "<!DOCTYPE svg"):
        assert needle not in text, needle
    # references inside the page are fine (xlink:href="#id", clip-path="url(#id)"); nothing points outside
    assert not re.search(r"href=\"(?!#)", text) and not re.search(r"url\((?!#)", text)
    # the only URLs are XML namespace names inside the SVGs, which nothing fetches
    assert {m.group(0) for m in re.finditer(r"https?://[^\s\"'<>]+", text)} <= {
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/1999/xlink",
    }
    assert text.count("<svg") == 3  # petal_length, petal_width and the predictions drifted
    assert "petal_length: PSI" in text and "threshold crossed" in text

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    require(chromium is not None, "headless Chromium (apt-get install chromium)")
    assert chromium is not None
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "petal_length" in dom.stdout and dom.stdout.count("<svg") == 3
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [chromium, *flags, "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000, (
        done.stderr[-2000:]
    )
