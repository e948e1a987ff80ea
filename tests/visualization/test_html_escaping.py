"""Names in the HTML page are shown literally: plotly reads a subset of HTML in titles and
hover texts (links, bold, line breaks, entities, TeX), so they are escaped for plotly, and
a real browser shows them as typed."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from pointea import visualization as viz
from pointea.visualization.interactive import CHROMIUM_OFFLINE_FLAGS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Under CI (scripts/test.sh installs chromium) a missing browser is a failure, not a skip.
NO_BROWSER = CHROMIUM is None and not os.environ.get("CI")

LINK = '<a href="https://x.example/">click</a>'
BOLD = '<b>bold</b> "q" & $1$ $2$ &amp;'
TITLE = f'{LINK} "quoted" <br>next <span style="color:red">red</span>'


def test_plotly_text_escapes_markup_entities_and_tex():
    assert viz.plotly_text(LINK) == '&lt;a href="https://x.example/"&gt;click&lt;/a&gt;'
    assert viz.plotly_text("a & b $x$") == "a &amp; b &#36;x&#36;"
    assert viz.plotly_text('say "hi"') == 'say "hi"'  # plotly has no &quot;: left as is
    assert viz.plotly_text("bell\x07 caf\udce9") == "bell\\x07 caf\\xe9"


def test_figure_hover_and_title_are_escaped_for_plotly():
    pts = np.random.default_rng(0).normal(size=(20, 3))
    lab = np.arange(20) % 2
    fig = viz.labeled_figure(pts, lab, label_names=[LINK, BOLD], title=TITLE)
    data = fig.to_plotly_json()
    assert set(data["data"][0]["hovertext"]) == {viz.plotly_text(LINK), viz.plotly_text(BOLD)}
    assert data["layout"]["title"]["text"] == viz.plotly_text(TITLE)
    assert "&quot;" not in data["layout"]["title"]["text"]


def test_page_title_with_a_non_utf8_name_is_written(tmp_path):
    fig = viz.cloud_figure(np.random.default_rng(0).normal(size=(10, 3)), title="caf\udce9")
    page = viz.write_html(tmp_path / "p.html", fig, title="run caf\udce9 <b>")
    text = page.read_text(encoding="utf-8")
    assert "<title>run caf\\xe9 &lt;b&gt;</title>" in text


PROBE = """<script>
// one small 2D plot per hover string, its label shown by plotly's own hover code
var found = {hovers: [], titles: [], links: 0};
Promise.all(HOVER.map(function (text) {
  var gd = document.createElement('div');
  gd.style.width = '420px'; gd.style.height = '200px';
  document.body.appendChild(gd);
  return Plotly.newPlot(gd, [{type: 'scatter', x: [0], y: [0], mode: 'markers',
                              hovertext: [text], hoverinfo: 'text'}], {}).then(function () {
    Plotly.Fx.hover(gd, [{curveNumber: 0, pointNumber: 0}]);
    gd.querySelectorAll('.hovertext text').forEach(t => found.hovers.push(t.textContent));
  });
})).then(function () {
  found.titles = Array.from(document.querySelectorAll('.gtitle')).map(t => t.textContent);
  found.links = document.querySelectorAll('svg a').length;
  document.body.setAttribute('data-found', JSON.stringify(found));
});
</script>"""


@pytest.mark.slow
@pytest.mark.skipif(
    NO_BROWSER,
    reason="chromium is not installed (apt-get install -y chromium); scripts/test.sh installs it",
)
def test_chromium_shows_names_literally_with_no_live_link(tmp_path):
    """The page as written, plus a probe that shows the figure's own hover strings the way
    plotly shows any hover label, read back from the DOM Chromium built."""
    pts = np.random.default_rng(0).normal(size=(40, 3))
    lab = np.arange(40) % 2
    fig = viz.labeled_figure(pts, lab, label_names=[LINK, BOLD], title=TITLE)
    page = viz.write_html(tmp_path / "p.html", fig, title=f"run {LINK}")
    hover = sorted(set(fig.to_plotly_json()["data"][0]["hovertext"]))
    probe = PROBE.replace("HOVER", json.dumps(hover))
    (tmp_path / "probe.html").write_text(page.read_text().replace("</body>", probe + "</body>"))
    cmd = [
        CHROMIUM,
        *CHROMIUM_OFFLINE_FLAGS,
        "--virtual-time-budget=8000",
        "--dump-dom",
        (tmp_path / "probe.html").as_uri(),
    ]
    dom = subprocess.run(cmd, capture_output=True, timeout=300, check=False).stdout.decode()
    match = re.search(r'data-found="([^"]*)"', dom)
    assert match, "the probe did not run"
    found = json.loads(html.unescape(match.group(1)))
    assert found["titles"] == [TITLE]  # the 3D figure's title, as typed: no &quot;, no link
    assert sorted(found["hovers"]) == sorted([LINK, BOLD])
    assert found["links"] == 0
    assert not re.search(r"<a\b[^>]*x\.example", dom)  # no live link anywhere in the page
    assert f"<h1>run {html.escape(LINK)}</h1>" in dom or "<h1>run &lt;a" in dom
