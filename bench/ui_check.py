"""Check the MLflow UI in a real headless browser and take the README's screenshots.

    python bench/ui_check.py [--store sqlite:///mlflow.db] [--experiment conflict-claims] [--out docs]

Starts `mlflow ui` on 127.0.0.1 (a free port) against the store, opens the experiment's runs table
in headless Chromium (Playwright driving Debian's /usr/bin/chromium), and checks from the DOM that:
- the runs table lists every parent run of the store (one per config), child runs hidden by the
  filter tags.claims.role = "parent";
- the `score` column can be shown from the Columns selector (with a_mean, b_mean and d_* beside
  it), and its values are the store's;
- the table sorts by `score`, descending, from the Sort menu;
- the chart view draws a bar chart of `score` (and of the other short metrics) for those runs.
It saves <out>/mlflow_runs_table.png and <out>/mlflow_chart.png and always stops the server.
Exit 0 when every check passes, 1 with one line on the first that fails, 2 without Playwright.

Needs: `pip install -e '.[ui]'` (Playwright) and `apt-get install chromium`; the bundled browsers of
`playwright install` are not used.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import typer

from claims.util.paths import DEFAULT_TRACKING_URI, ROOT

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1600, "height": 1000}
SORT_METRIC = "score"
# The short metrics every parent run carries; the table shows them all, `score` last.
SHORT_METRICS = ("a_mean", "b_mean", "d_claim_type", "d_attribution", "d_withdrawal", SORT_METRIC)
CHART_SEARCH = "^(score|a_mean|b_mean|d_.*)$"  # the chart view's search box takes a regular expression
PARENT_FILTER = 'tags.claims.role = "parent"'
# Attribute columns hidden so that the metric columns fit in the screenshot.
HIDDEN_ATTRIBUTES = ("Dataset", "Models")
CHART_RUNS = 10  # the chart view draws the first ten runs of the table

app = typer.Typer(add_completion=False)


class Failed(Exception):
    """One check failed; the message is the one line printed."""


@contextmanager
def step(what: str):
    """Any error inside becomes one line naming the step."""
    try:
        yield
    except Failed:
        raise
    except Exception as e:  # Playwright timeouts, missing elements, server errors
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise Failed(f"{what}: {first}") from None


def absolute_store(store: str) -> str:
    """A relative sqlite path is the user's, relative to the working directory; the server runs elsewhere."""
    prefix = "sqlite:///"
    if store.startswith(prefix) and not store.startswith(prefix + "/"):
        path = Path(store[len(prefix):]).resolve()
        return prefix + str(path)
    return store


def store_runs(store: str, experiment: str) -> tuple[str, list]:
    """The experiment's id and its active parent runs (no parent run of their own), read from the store."""
    from mlflow.tracking import MlflowClient

    if store.startswith("sqlite:///") and not Path(store[len("sqlite:///"):]).is_file():
        raise Failed(f"store {store}: no such file")
    client = MlflowClient(store)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise Failed(f"store {store} has no experiment {experiment!r}")
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    if not parents:
        raise Failed(f"experiment {experiment!r} in {store} has no parent runs")
    if not any(SORT_METRIC in r.data.metrics for r in parents):
        raise Failed(f"no parent run in {store} has a `{SORT_METRIC}` metric (runs older than it: train again)")
    untagged = [r.info.run_name for r in parents if r.data.tags.get("claims.role") != "parent"]
    if untagged:
        raise Failed(f"parent runs without the tag claims.role=parent, which the UI filter needs: {', '.join(untagged)}")
    return exp.experiment_id, parents


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _terminated(signum, frame):
    raise SystemExit(128 + signum)  # unwinds through `finally`, which stops the server


@contextmanager
def mlflow_ui(store: str, timeout: float):
    """`mlflow ui` on a free local port, in its own process group; yields its base URL, always stops it."""
    signal.signal(signal.SIGTERM, _terminated)
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="ui_check_"))  # whatever the server writes stays out of the project
    log = open(workdir / "server.log", "w+")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store,
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                tail = [line for line in log.read().splitlines() if line.strip()][-1:] or ["no output"]
                raise Failed(f"mlflow ui exited with code {proc.returncode}: {tail[0]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise Failed(f"mlflow ui did not answer on {url} within {timeout:.0f}s")
            time.sleep(1)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server's group: uvicorn and its job runner too
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def close_assistant(page) -> None:
    close = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
    if close.count() and close.first.is_visible():
        close.first.click()


def tree_node(page, title: str):
    """The Columns selector's tree row whose title is exactly `title`."""
    exact = page.locator(".du-bois-light-tree-title").filter(has_text=re.compile(f"^{re.escape(title)}$"))
    return page.locator(".du-bois-light-tree-treenode").filter(has=exact)


def set_columns(page, show: tuple[str, ...], hide: tuple[str, ...]) -> None:
    """Tick `show` and untick `hide` in the Columns selector, as a user would."""
    page.get_by_role("button", name="Columns", exact=True).click()
    search = page.get_by_placeholder("Search columns")
    for name, want in [(n, True) for n in show] + [(n, False) for n in hide]:
        search.fill(name)
        node = tree_node(page, name)
        node.first.wait_for(timeout=10_000)
        box = node.first.locator(".du-bois-light-tree-checkbox")
        checked = "du-bois-light-tree-checkbox-checked" in (box.get_attribute("class") or "")
        if checked != want:
            box.click()
    search.fill("")
    page.keyboard.press("Escape")


def sort_by(page, metric: str) -> None:
    """Sort menu: search the metric, pick it, then press the descending arrow."""
    menu = page.get_by_test_id("sort-select-dropdown")
    menu.click()
    page.locator('[data-component-id$="sortselectorv2.tsx_97"]').fill(metric)
    page.get_by_test_id(f"sort-select-{metric}").click()
    if not page.get_by_test_id("sort-select-desc").is_visible():
        menu.click()
    page.get_by_test_id("sort-select-desc").click()
    if page.get_by_test_id("sort-select-desc").is_visible():
        page.keyboard.press("Escape")


def table_rows(page) -> list[tuple[str, str, str]]:
    """(run id, run name, score cell text) of every rendered row, in the table's order."""
    return page.evaluate("""metric => {
        const rows = {};
        for (const r of document.querySelectorAll('.ag-pinned-left-cols-container [role=row]')) {
            const name = r.querySelector('[col-id="attributes.`Run Name`"] a');
            rows[r.getAttribute('row-id')] = {i: +r.getAttribute('row-index'), name: name ? name.innerText.trim() : ''};
        }
        for (const r of document.querySelectorAll('.ag-center-cols-container [role=row]')) {
            const cell = r.querySelector(`[col-id="metrics.\\`${metric}\\`"]`);
            const row = rows[r.getAttribute('row-id')];
            if (row) row.score = cell ? cell.innerText.trim() : null;
        }
        return Object.entries(rows).sort((a, b) => a[1].i - b[1].i).map(([id, r]) => [id, r.name, r.score]);
    }""", SORT_METRIC)


def check_table(page, url: str, experiment_id: str, parents: list, out: Path,
                timeout_ms: float) -> tuple[list[str], list[str]]:
    done = []
    expected = {r.info.run_id: r for r in parents}
    with step("open the runs table"):
        # "Model training" in the sidebar's GenAI / Model training switch; a fresh browser starts on GenAI.
        page.goto(f"{url}/#/experiments/{experiment_id}/runs?workflowType=machine_learning")
        page.wait_for_function("/[1-9][0-9]* matching runs/.test(document.body.innerText)", timeout=timeout_ms)
        close_assistant(page)
    with step(f"filter the runs with {PARENT_FILTER}"):
        box = page.get_by_test_id("search-box")
        box.fill(PARENT_FILTER)
        box.press("Enter")
        page.keyboard.press("Escape")
        page.wait_for_function(f"document.body.innerText.includes('{len(parents)} matching run')", timeout=timeout_ms)
    with step("show the short metric columns"):
        set_columns(page, SHORT_METRICS, HIDDEN_ATTRIBUTES)
        for name in SHORT_METRICS:
            page.locator(f'.ag-header-cell[col-id="metrics.`{name}`"]').wait_for(timeout=timeout_ms)
        for name in HIDDEN_ATTRIBUTES:
            page.locator(f'.ag-header-cell[col-id="attributes.`{name}`"]').wait_for(state="detached", timeout=timeout_ms)
    with step(f"sort by {SORT_METRIC}"):
        sort_by(page, SORT_METRIC)
        page.wait_for_function(
            f"location.hash.includes('orderByKey=metrics.%60{SORT_METRIC}%60') && location.hash.includes('orderByAsc=false')",
            timeout=timeout_ms)
        page.wait_for_timeout(1500)  # the table re-renders after the new search
    with step("load every run"):
        for _ in range(50):
            more = page.get_by_role("button", name="Load more", exact=True)
            if not (more.count() and more.first.is_visible()):
                break
            more.first.click()
            page.wait_for_timeout(1500)
        page.wait_for_function(f"document.querySelectorAll('.ag-pinned-left-cols-container [role=row]').length >= {len(parents)}",
                               timeout=timeout_ms)

    rows = table_rows(page)
    shown = {run_id for run_id, _, _ in rows}
    missing = [r.info.run_name for rid, r in expected.items() if rid not in shown]
    if missing:
        raise Failed(f"runs table lacks parent runs {', '.join(missing)}")
    extra = [name for rid, name, _ in rows if rid not in expected]
    if extra:
        raise Failed(f"runs table shows runs that are not parent runs (child runs not hidden?): {', '.join(extra[:5])}")
    done.append(f"runs table lists the {len(parents)} parent runs of the store, child runs hidden: "
                + ", ".join(name for _, name, _ in rows))

    box = page.locator(f'.ag-header-cell[col-id="metrics.`{SORT_METRIC}`"]').bounding_box()
    if box is None or box["x"] < 0 or box["x"] + box["width"] > VIEWPORT["width"]:
        raise Failed(f"the {SORT_METRIC} column header is not on screen")
    scores = []
    for run_id, name, text in rows:
        stored = expected[run_id].data.metrics.get(SORT_METRIC)
        shown_value = None if text in (None, "", "-") else float(text)
        if stored is None and shown_value is None:
            continue
        if stored is None or shown_value is None or not math.isclose(stored, shown_value, rel_tol=1e-9, abs_tol=1e-12):
            raise Failed(f"{name}: {SORT_METRIC} shown {text!r}, store has {stored}")
        scores.append((name, shown_value))
    done.append(f"{SORT_METRIC} column shown (with {', '.join(SHORT_METRICS[:-1])}); values match the store")
    values = [v for _, v in scores]
    if values != sorted(values, reverse=True) or any(t in (None, "", "-") for _, _, t in rows[:len(scores)]):
        raise Failed(f"table not sorted by {SORT_METRIC}, descending: {scores}")
    done.append(f"sorted by {SORT_METRIC}, descending: " + ", ".join(f"{n} {v:.3f}" for n, v in scores))

    path = out / "mlflow_runs_table.png"
    page.mouse.move(VIEWPORT["width"] // 2, VIEWPORT["height"] - 5)  # no hover marks on the rows
    page.screenshot(path=str(path))
    done.append(f"saved {path}")
    return done, [name for _, name, _ in rows]


def check_chart(page, ordered_names: list[str], out: Path, timeout_ms: float) -> list[str]:
    done = []
    with step("open the chart view"):
        page.locator("label:has(input[name=runs-view-mode][value=CHART])").click()
        search = page.get_by_placeholder("Search metric charts")
        search.wait_for(timeout=timeout_ms)
        search.fill(CHART_SEARCH)
        card = page.get_by_test_id("experiment-view-compare-runs-card")
        page.wait_for_function(
            f"document.querySelectorAll('[data-testid=experiment-view-compare-runs-card]').length === {len(SHORT_METRICS)}",
            timeout=timeout_ms)
        page.wait_for_timeout(2000)  # bars animate in
        titles = [t.split("\n")[0].strip() for t in card.all_inner_texts()]
    if sorted(titles) != sorted(SHORT_METRICS):
        raise Failed(f"chart view shows charts {titles}, expected {list(SHORT_METRICS)}")
    score_card = page.get_by_test_id("experiment-view-compare-runs-card").filter(
        has=page.get_by_text(SORT_METRIC, exact=True))
    text = score_card.first.inner_text()
    # whole names: "tfidf" must not pass because "tfidf_context" is drawn
    absent = [n for n in dict.fromkeys(ordered_names[:CHART_RUNS]) if not re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text)]
    if absent:
        raise Failed(f"the {SORT_METRIC} chart does not show runs {', '.join(absent)}")
    done.append(f"chart view draws bar charts of {', '.join(titles)} for " + ", ".join(dict.fromkeys(ordered_names[:CHART_RUNS])))
    path = out / "mlflow_chart.png"
    page.screenshot(path=str(path))
    done.append(f"saved {path}")
    return done


@app.command()
def main(
    store: str = typer.Option(DEFAULT_TRACKING_URI, help="MLflow store, as for `mlflow ui --backend-store-uri`."),
    experiment: str = typer.Option("conflict-claims", help="Experiment to open."),
    out: Path = typer.Option(ROOT / "docs", help="Folder for the two screenshots."),
    timeout: float = typer.Option(120.0, help="Seconds to wait for the server, and for each step in the browser."),
) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("Playwright is not installed: pip install -e '.[ui]' (and apt-get install chromium)")
        raise typer.Exit(2)
    try:
        if not Path(CHROMIUM).is_file():
            raise Failed(f"{CHROMIUM} not found: apt-get install chromium")
        store = absolute_store(store)
        experiment_id, parents = store_runs(store, experiment)
        out.mkdir(parents=True, exist_ok=True)
        timeout_ms = timeout * 1000
        import mlflow

        with mlflow_ui(store, timeout) as url:
            print(f"MLflow {mlflow.__version__} UI at {url}, store {store}, experiment {experiment} (id {experiment_id})")
            with sync_playwright() as pw:
                with step("start chromium"):
                    browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                try:
                    page = browser.new_page(viewport=VIEWPORT)
                    page.set_default_timeout(timeout_ms)
                    done, names = check_table(page, url, experiment_id, parents, out, timeout_ms)
                    for line in done:
                        print(f"ok  {line}")
                    for line in check_chart(page, names, out, timeout_ms):
                        print(f"ok  {line}")
                except Failed as e:
                    shot = Path(tempfile.gettempdir()) / "ui_check_failed.png"
                    page.screenshot(path=str(shot))
                    raise Failed(f"{e} (page at failure: {shot})") from None
                finally:
                    browser.close()
    except Failed as e:
        print(f"FAILED: {e}")
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
