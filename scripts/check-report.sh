#!/usr/bin/env bash
# The benchmark as a user meets it: run bench/smoke.toml into a fresh database, check that a second
# run resumes (finishes nothing new), write the report, and render it in headless Chromium: the
# DOM must have the leaderboard's rows, sort on request (#sort=autoattack), and show every plot.
# A screenshot is left in the output directory to look at.
# Usage: scripts/check-report.sh [OUT_DIR]   (default: a temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
bin=.build/release/advprune
[ -x "$bin" ] || swift build -c release
browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ]; then
  echo "installing Debian's chromium for the headless render"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
  browser="$(command -v chromium)"
fi
db="$out/smoke.sqlite"
"$bin" bench run bench/smoke.toml --db "$db" --device cpu --quiet
"$bin" bench run bench/smoke.toml --db "$db" --device cpu --quiet --json > "$out/second-run.json"
python3 - "$out/second-run.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["finished"] == 0 and s["skipped"] == s["cells"], f"a second run must only skip: {s}"
PY
"$bin" bench status bench/smoke.toml --db "$db" | tee "$out/status.txt"
grep -q "0 left" "$out/status.txt"
"$bin" report "$db" --out "$out/report" --markdown "$out/leaderboard.md" --csv "$out/cells.csv"
page="file://$(cd "$out/report" && pwd)/index.html"
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars)
timeout 120 "$browser" "${flags[@]}" --dump-dom "$page#sort=autoattack" > "$out/dom.html" 2>/dev/null
timeout 120 "$browser" "${flags[@]}" --window-size=1200,2600 --screenshot="$out/report.png" "$page" >/dev/null 2>&1
python3 - "$out/dom.html" "$out/report" <<'PY'
import os, sys, xml.etree.ElementTree as ET
from html.parser import HTMLParser

class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.row, self.cell, self.imgs, self.sorted, self.heads = [], None, None, [], [], []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and "leaderboard" in a.get("class", ""):
            self.sorted.append(a.get("data-sorted"))
        if tag == "th" and a.get("data-key"):
            self.heads.append(a["data-key"])
        if tag == "tr" and "row" in a.get("class", "").split():
            self.row = []
        if tag == "td" and self.row is not None:
            self.row.append(a.get("data-v"))
        if tag == "img" and "plot" in a.get("class", ""):
            self.imgs.append(a["src"])
    def handle_endtag(self, tag):
        if tag == "tr" and self.row is not None:
            self.rows.append(self.row)
            self.row = None

page = Page()
page.feed(open(sys.argv[1]).read())
assert len(page.rows) == 5, f"expected 5 leaderboard rows (dense + 2 methods x 2 sparsities), found {len(page.rows)}"
assert page.sorted == ["autoattack-desc"], f"the #sort=autoattack request did not sort the table: {page.sorted}"
col = page.heads.index("autoattack")
values = [float(r[col]) for r in page.rows]
assert values == sorted(values, reverse=True), f"not sorted by AutoAttack accuracy: {values}"
assert len(page.imgs) >= 4, f"expected robustness curves and layer profiles, found {page.imgs}"
for src in page.imgs:
    ET.parse(os.path.join(sys.argv[2], src))  # each plot exists and is well-formed SVG
print(f"report ok: {len(page.rows)} rows sorted by AutoAttack {values}, {len(page.imgs)} plots")
PY
echo "screenshot: $out/report.png"
