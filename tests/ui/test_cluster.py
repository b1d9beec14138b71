"""Browser test: the panel's Cluster section at 100 nodes x 8 GPUs, with the real server.

Debian's Prometheus scrapes a recorded exposition of 100 nodes x 8 H100s (DCGM exporter's series
and this project's kernel series: holders, leak alarms, idle kernels; tests/data/cluster/
dcgm-100x8.prom.gz), and a real ``jupyter lab`` (``--GPUPanel.prometheus_url``) serves
``GET cluster`` from it. The section lists every GPU, sorts by memory, and the 'mine' filter is
empty (no kernel of this server's user holds a GPU there). Render times are printed, never
asserted.

Selectors are the section's data-* attributes (labextension/src/cluster/table.tsx, section.tsx).
"""

from __future__ import annotations

import gzip
import statistics
from collections.abc import Iterator

import pytest

import needs
from .conftest import REPO, Lab, start_lab
from .test_panel import open_lab, open_panel
from servers import Exposition, start_prometheus, wait_until

pytestmark = pytest.mark.ui

SCALE = REPO / "tests" / "data" / "cluster" / "dcgm-100x8.prom.gz"
SECTION = "#jp-gpu-panel [data-cluster-section]"
TABLE = f"{SECTION} [data-cluster-table]"
ROWS = f"{TABLE} tr[data-cluster-row]"

#: Before any page script: when each cluster response arrives, and when its rows are first in the
#: DOM (a MutationObserver), so the first render is timed from the response, in the page's clock.
TIMING = """
(() => {
  const t = (window.__cluster = { responses: [], firstRows: null });
  const fetch0 = window.fetch.bind(window);
  window.fetch = async (input, init) => {
    const url = typeof input === 'string' ? input : input.url;
    const r = await fetch0(input, init);
    if (url.includes('api/gpu-panel/cluster')) {
      t.responses.push(performance.now());
    }
    return r;
  };
  new MutationObserver((_, obs) => {
    if (document.querySelector('[data-cluster-table] tr[data-cluster-row]')) {
      t.firstRows = performance.now();
      obs.disconnect();
    }
  }).observe(document, { childList: true, subtree: true });
})();
"""


@pytest.fixture(scope="module")
def cluster_lab(tmp_path_factory) -> Iterator[Lab]:
    needs.prometheus()
    work = tmp_path_factory.mktemp("cluster-ui")
    text = gzip.decompress(SCALE.read_bytes()).decode()
    exporter = Exposition(lambda: text).start()
    prom = lab = None
    try:
        prom = start_prometheus(
            work / "prometheus",
            [{"job_name": "dcgm", "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}],
        )
        wait_until(lambda: len(prom.query("DCGM_FI_DEV_FB_USED")) == 800, 60, "800 GPUs in Prometheus")
        lab = start_lab(
            work / "lab", "replay", extra_args=[f"--GPUPanel.prometheus_url={prom.url}", "--GPUPanel.cluster_refresh=1"]
        )
        yield lab
    finally:
        if lab is not None:
            lab.stop()
        if prom is not None:
            prom.stop()
        exporter.stop()


def gpus_of(doc: dict) -> list[dict]:
    return [g for n in doc["nodes"] for g in n["gpus"]]


def share(g: dict) -> float:
    return g["mem_used"] / g["mem_total"]


def rendered_rows(page) -> list[dict]:
    """The rows in the DOM (the table is windowed: the first screenful and a margin)."""
    return page.eval_on_selector_all(
        ROWS,
        "rows => rows.map(r => ({node: r.dataset.node, gpu: r.dataset.gpu, share: Number(r.dataset.memShare), "
        "index: Number(r.getAttribute('aria-rowindex'))}))",
    )


def table_state(page) -> dict:
    return page.eval_on_selector(TABLE, "t => ({...t.dataset})")


def click_sort(page, key: str, direction: str) -> None:
    """Click a column header until it sorts that way; the table follows (deferred) before this returns."""
    header = page.locator(f"{TABLE} thead th[data-sort-key={key}]")
    for _ in range(2):
        if header.get_attribute("aria-sort") == direction:
            break
        header.locator("button").click()
    assert header.get_attribute("aria-sort") == direction
    page.wait_for_function(
        "([sel, key, dir]) => { const t = document.querySelector(sel);"
        " return t && t.dataset.sortKey === key && t.dataset.sortDir === dir; }",
        arg=[TABLE, key, "asc" if direction == "ascending" else "desc"],
    )


def check_cluster_section(page, doc: dict) -> list[float]:
    """The open section against the document the server serves: summary, sort by memory, the
    window, the filters, 'mine' empty. Returns the 'mine' -> 'all' re-render times (ms)."""
    gpus = gpus_of(doc)
    # the summary and every GPU, in the table's count (windowed: a screenful is in the DOM)
    summary_el = page.locator(f"{SECTION} [data-cluster-summary]")
    assert summary_el.get_attribute("data-nodes") == "100"
    assert summary_el.get_attribute("data-gpus") == "800"
    assert summary_el.inner_text().startswith("100 nodes · 800 GPUs · ")
    assert table_state(page)["rows"] == "800"
    assert page.locator(TABLE).get_attribute("aria-rowcount") == "801"
    assert 0 < page.locator(ROWS).count() < 800

    # sorting by memory: descending, then ascending; the first row is the fullest (emptiest) GPU
    click_sort(page, "memory", "descending")
    rows = rendered_rows(page)
    shares = [r["share"] for r in rows]
    assert shares == sorted(shares, reverse=True), shares[:10]
    top = max(share(g) for g in gpus)
    assert abs(rows[0]["share"] - top) < 1e-3
    assert (rows[0]["node"], rows[0]["gpu"]) in {(g["node"], g["gpu"]) for g in gpus if abs(share(g) - top) < 1e-9}
    assert [r["index"] for r in rows[:3]] == [2, 3, 4]
    click_sort(page, "memory", "ascending")
    shares = [r["share"] for r in rendered_rows(page)]
    assert shares == sorted(shares), shares[:10]
    assert abs(shares[0] - min(share(g) for g in gpus)) < 1e-3

    # scrolled to the end, the window moves: the last GPU of the order is rendered
    page.eval_on_selector(f"{SECTION} [data-cluster-scroll]", "s => { s.scrollTop = s.scrollHeight; }")
    page.wait_for_function(
        "sel => [...document.querySelectorAll(sel)].some(r => r.getAttribute('aria-rowindex') === '801')",
        arg=ROWS,
    )

    # leak alarms and idle holders: a filter each, and marked in every row they keep
    alarms = sum(1 for g in gpus if g["leak_alarms"] > 0)
    page.click(f"{SECTION} [data-cluster-filter=alarms]")
    page.wait_for_function("([sel, n]) => document.querySelector(sel)?.dataset.rows === n", arg=[TABLE, str(alarms)])
    assert page.locator(f"{ROWS} [data-kind=leak]").count() == page.locator(ROWS).count() > 0
    idle = sum(1 for g in gpus if g["idle_holders"] > 0)
    page.click(f"{SECTION} [data-cluster-filter=idle]")
    page.wait_for_function("([sel, n]) => document.querySelector(sel)?.dataset.rows === n", arg=[TABLE, str(idle)])
    assert page.locator(f"{ROWS} [data-kind=idle]").count() == page.locator(ROWS).count() > 0

    # 'mine': nobody here is this server's user, so the empty state says so
    page.click(f"{SECTION} [data-cluster-filter=mine]")
    empty = page.locator(f"{SECTION} [data-cluster-empty=mine]")
    empty.wait_for()
    assert empty.inner_text() == "None of your kernels holds a GPU in the cluster."
    assert page.locator(ROWS).count() == 0
    assert page.locator(f"{SECTION} [data-cluster-filter=mine]").get_attribute("aria-pressed") == "true"

    # re-render: 'mine' (no rows) -> 'all' (800), click to rows on screen, a few times
    rerenders = []
    for _ in range(5):
        page.click(f"{SECTION} [data-cluster-filter=mine]")
        empty.wait_for()
        rerenders.append(
            page.evaluate(
                """sel => new Promise(done => {
                     const t0 = performance.now();
                     document.querySelector(sel + ' [data-cluster-filter=all]').click();
                     const tick = () => {
                       const t = document.querySelector(sel + ' [data-cluster-table]');
                       if (t && t.dataset.rows === '800' && t.querySelector('tr[data-cluster-row]')) {
                         requestAnimationFrame(() => done(performance.now() - t0));
                       } else {
                         requestAnimationFrame(tick);
                       }
                     };
                     tick();
                   })""",
                SECTION,
            )
        )
    return rerenders


def test_cluster_section_at_100_nodes_by_8_gpus(cluster_lab, page, artifacts):
    lab = cluster_lab
    doc = lab.api("cluster")
    assert doc["state"] == "ok", doc["message"]
    summary = doc["summary"]
    assert summary["nodes"] == 100 and summary["gpus"] == 800
    assert summary["mine"] == 0, "no kernel of this server's user holds a GPU in the recording"

    page.add_init_script(TIMING)
    open_lab(page, lab)
    open_panel(page)
    section = page.locator(SECTION)
    section.wait_for(state="attached", timeout=60000)
    section.scroll_into_view_if_needed()
    if section.get_attribute("data-open") == "false":
        section.locator("[data-cluster-toggle]").click()
    page.wait_for_selector(f"{SECTION}[data-state=ok]")
    page.locator(ROWS).first.wait_for()

    # the first render: response -> rows in the DOM (body read, JSON, React)
    timing = page.evaluate("() => window.__cluster")
    first_render = timing["firstRows"] - timing["responses"][0] if timing["responses"] else None

    rerenders = check_cluster_section(page, doc)
    print(
        f"\n[perf] Cluster section, 100 nodes x 8 GPUs: first render (response -> rows in the DOM) "
        f"{'n/a' if first_render is None else f'{first_render:.1f} ms'}; "
        f"filter 'mine' -> 'all' (click -> 800-GPU table painted) median {statistics.median(rerenders):.1f} ms, "
        f"max {max(rerenders):.1f} ms; {page.locator(ROWS).count()} rows in the DOM"
    )
    section.screenshot(path=str(artifacts / "cluster-100x8.png"))
    assert page.page_errors == []
