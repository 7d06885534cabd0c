"""Look at a rendered page of the documentation site in headless Chromium.

``python docs/screenshot.py docs/_build/html/derivations/univariate.html out.png``
takes a screenshot of the page after MathJax has typeset it and checks, in the
DOM Chromium rendered, that the math was typeset (MathJax's ``mjx-container``
elements are there) and that no raw TeX (``\\frac``, ``\\int``, ``$$``) is left
in the visible text.  Exit status 0 when the math rendered, 1 otherwise.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["chromium", "raw_tex", "render_page"]

_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_RAW_TEX = re.compile(r"\\(?:frac|int|sigma|mu|log|left|right|begin)\b|\$\$")


def chromium() -> str | None:
    """The path of a Chromium (or Chrome) executable, or None."""
    for name in _BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(browser: str, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    flags += ["--virtual-time-budget=20000", "--window-size=1280,1800"]
    return subprocess.run(
        [browser, *flags, *args], capture_output=True, text=True, timeout=300, check=True
    )


def raw_tex(dom: str) -> list[str]:
    """TeX fragments left in the visible text of a rendered DOM (empty when typeset)."""
    visible = re.sub(r"<(script|style)\b.*?</\1>", "", dom, flags=re.S | re.I)
    visible = html.unescape(re.sub(r"<[^>]+>", " ", visible))
    return sorted(set(_RAW_TEX.findall(visible)))


def render_page(page: Path, screenshot: Path) -> tuple[int, list[str]]:
    """Screenshot ``page`` into ``screenshot``; return (typeset formulas, raw TeX left)."""
    browser = chromium()
    if browser is None:
        raise FileNotFoundError("no Chromium found (Debian: apt-get install chromium)")
    url = page.resolve().as_uri()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    _run(browser, f"--screenshot={screenshot.resolve()}", url)
    dom = _run(browser, "--dump-dom", url).stdout
    return dom.count("<mjx-container"), raw_tex(dom)


def main(argv: list[str]) -> int:
    page, screenshot = Path(argv[0]), Path(argv[1])
    formulas, leftovers = render_page(page, screenshot)
    size = screenshot.stat().st_size if screenshot.exists() else 0
    print(f"{page}: {formulas} formulas typeset by MathJax; screenshot {screenshot} ({size} bytes)")
    if leftovers or formulas == 0 or size < 10_000:
        print(f"math did not render: raw TeX in the page: {leftovers}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
