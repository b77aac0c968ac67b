"""OUT/report.html: written with every compile, self-contained, its numbers those of report.json (read back
from the page's data attributes and text), bench and verify with -o OUT add their results under the output
safety rules (the manifest knows the new page; results of the same compile are kept, another compile's
dropped), and the page renders in a real headless Chromium (DevTools protocol): the plots are in the DOM and
drawn, the sorting script works, and the console shows no errors.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import REPO, SHARED_MODELS
from mcucompile import cli
from mcucompile.api import CompileOptions, compile_model, write_library
from mcucompile.api.options import PatchOptions
from mcucompile.report.html import (BarChart, Facts, HtmlReport, HtmlSection, Paragraph, Table, carried_page,
                                    read_results, render_html)

MNIST = REPO / "models" / "mnist" / "mnist_cnn.onnx"
MNIST_CALIB = REPO / "models" / "mnist" / "mnist_calib_200.npz"
CASES = {
    "mnist": (MNIST, dict(board="qemu-m7", calib=str(MNIST_CALIB))),
    "resnet8_patched": (SHARED_MODELS / "resnet8_float.onnx",
                        dict(board="host", calib_samples=4,
                             patch=PatchOptions(mode="forced", split=4, patches=2, input_by_patch=True))),
    "kws_tflite": (SHARED_MODELS / "kws_dscnn_int8.tflite", dict(board="qemu-m7")),
}
# report.json's top-level figures the summary shows (data-key -> the same key in report.json)
SUMMARY_KEYS = ("model", "board", "compiler_version", "kernels", "source_format", "rounding", "macs",
                "peak_sram_bytes", "peak_sram_layerwise_bytes", "arena_bytes", "flash_bytes", "weights_bytes",
                "code_bytes_estimate", "estimated_instructions", "optimize")


# --- reading the page back -----------------------------------------------------------------------------------

class Page(HTMLParser):
    """What a reader of report.html gets: the summary's data-key values, each layer row's data attributes and
    cell texts, the footer totals, the memory plot's per-step figures, the ids of the SVG plots, and every
    URL-bearing attribute (to prove nothing is fetched)."""

    def __init__(self, text: str):
        super().__init__()
        self.summary: dict[str, str] = {}
        self.layers: list[dict] = []
        self.totals: dict[str, str] = {}
        self.svgs: list[str] = []
        self.memory_titles: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.tags: set[str] = set()
        self._row: dict | None = None
        self._cell: list[str] | None = None
        self._in_memory = False
        self._title: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        for k, v in attrs:
            if k in ("src", "href", "action", "srcset", "data", "poster") or (k == "content" and "http" in (v or "")):
                self.urls.append((tag, k, v or ""))
        if "data-key" in a:
            self.summary[a["data-key"]] = a.get("data-value")
        if tag == "tr" and "data-index" in a:
            self._row = {**a, "cells": []}
        elif tag == "td" and self._row is not None:
            self._cell = []
        if tag == "td" and a.get("id", "").startswith("total-"):
            self.totals[a["id"]] = a.get("data-value")
        if tag == "svg":
            self.svgs.append(a.get("id", ""))
            self._in_memory = a.get("id") == "plot-memory"
        if tag == "title" and self._in_memory:
            self._title = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None and self._row is not None:
            self._row["cells"].append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.layers.append(self._row)
            self._row = None
        elif tag == "title" and self._title is not None:
            self.memory_titles.append("".join(self._title))
            self._title = None
        elif tag == "svg":
            self._in_memory = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._title is not None:
            self._title.append(data)


def _int(text: str) -> int:
    return int(text.replace(",", "").strip())


def _memory_steps(page: Page, series: str) -> list[int]:
    """The memory plot's per-step figures of one series, from its hover titles ("<series>, step i: N B")."""
    out = []
    for t in page.memory_titles:
        if t.startswith(series + ", step "):
            out.append(_int(t.rsplit(": ", 1)[1].removesuffix(" B")))
    return out


def assert_page_matches_report(text: str, rep: dict) -> Page:
    page = Page(text)
    for key in SUMMARY_KEYS:
        assert key in page.summary, f"the summary does not show {key}"
        assert page.summary[key] == str(rep[key]), f"summary {key}: page {page.summary[key]!r}, report.json {rep[key]!r}"
    stage = rep["patch_plan"]["stage_layers"] if rep["patch_plan"] else 0
    assert page.summary["stage_layers"] == str(stage)
    if "tflm_arena_bytes" in rep:
        assert page.summary["tflm_arena_bytes"] == str(rep["tflm_arena_bytes"])
    assert len(page.layers) == len(rep["layers"]), "one table row per layer"
    for row, lay in zip(page.layers, rep["layers"]):
        where = f"layer {lay['index']}"
        assert row["id"] == f"layer-{lay['index']}" and row["data-index"] == str(lay["index"]), where
        assert row["data-name"] == lay["name"] and row["data-op"] == lay["op"], where
        assert int(row["data-macs"]) == lay["macs"], where
        assert int(row["data-arena-offset"]) == lay["arena_offset"], where
        assert row["data-input-offsets"] == ",".join(map(str, lay["input_offsets"])), where
        assert row["data-kernel"] == (lay["kernel"] or ""), where
        assert row["data-fast-kernel"] == str(lay["fast_kernel"]).lower(), where
        assert int(row["data-bitwidth"]) == lay["bitwidth"], where
        assert int(row["data-weight-bitwidth"]) == lay["weight_bitwidth"], where
        assert int(row["data-param-bytes"]) == lay["param_bytes"], where
        assert row["data-output-shape"] == "x".join(map(str, lay["output_shape"])), where
        # what the reader sees says the same: MACs, bits, offset and kernel cells
        cells = row["cells"]
        assert _int(cells[5]) == lay["macs"], where
        assert cells[7] == f"{lay['bitwidth']} / {lay['weight_bitwidth']}", where
        if lay["arena_offset"] >= 0:
            assert _int(cells[8]) == lay["arena_offset"], where
        assert cells[6].startswith(lay["kernel"] or "-"), where
        assert cells[4] == "x".join(map(str, lay["output_shape"])), where
    assert int(page.totals["total-macs"]) == rep["macs"] == sum(lay["macs"] for lay in rep["layers"])
    assert int(page.totals["total-arena"]) == rep["arena_bytes"]
    assert int(page.totals["total-param-bytes"]) == sum(lay["param_bytes"] for lay in rep["layers"])
    assert _memory_steps(page, "layer by layer") == rep["memory_profile"]["layerwise"]
    if "patched" in rep["memory_profile"]:
        patched = [t.split(", step ")[0] for t in page.memory_titles if t.startswith("patched ")]
        assert patched, "the patched profile is plotted"
        assert _memory_steps(page, patched[0]) == rep["memory_profile"]["patched"]
    assert {"plot-memory", "plot-flash", "plot-layers"} <= set(page.svgs)
    return page


def assert_self_contained(text: str, page: Page) -> None:
    assert not page.tags & {"link", "img", "iframe", "object", "embed"}, "the page loads nothing"
    assert all(v.startswith("#") for _, k, v in page.urls if k == "href"), page.urls
    assert not [u for u in page.urls if u[1] != "href"], page.urls
    assert "<script src" not in text and "@import" not in text and "url(" not in text
    assert "default-src 'none'" in text, "the Content-Security-Policy forbids any fetch"


# --- fixtures ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Each case compiled and written once: {name: (report.html text, report.json)}."""
    out = {}
    for name, (model, kw) in CASES.items():
        folder = write_library(compile_model(model, CompileOptions(progress=False, **kw)),
                               tmp_path_factory.mktemp(name) / "out")
        out[name] = ((folder / "report.html").read_text(), json.loads((folder / "report.json").read_text()))
    return out


def run(*args) -> tuple[int, str, str]:
    """The CLI in-process: exit code, stdout (stderr is not captured here)."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli.main([str(a) for a in args])
    return rc, buf.getvalue(), ""


@pytest.fixture(scope="module")
def benched(tmp_path_factory):
    """MNIST compiled for qemu-m4, then benched and verified into the same folder (real QEMU runs)."""
    out = tmp_path_factory.mktemp("benched") / "out"
    common = (MNIST, "--board", "qemu-m4", "--calib", MNIST_CALIB, "-o", out)
    rc, stdout, _ = run("bench", *common, "--json")
    assert rc == 0
    bench = json.loads(stdout)
    rc, stdout, _ = run("verify", *common, "-n", "2")
    assert rc == 0, stdout
    return out, bench


# --- the page's numbers ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(CASES))
def test_every_compile_writes_a_page_whose_numbers_are_report_json(name, pages):
    text, rep = pages[name]
    page = assert_page_matches_report(text, rep)
    assert_self_contained(text, page)
    assert read_results(text)["bench"] is None and read_results(text)["sections"] == []


def test_the_check_sees_a_wrong_number(pages):
    """The comparison is not vacuous: one MAC off in one row, or a step of the profile, fails it."""
    text, rep = pages["mnist"]
    lay = rep["layers"][2]
    wrong = text.replace(f'data-macs="{lay["macs"]}"', f'data-macs="{lay["macs"] + 1}"', 1)
    with pytest.raises(AssertionError, match="layer 2"):
        assert_page_matches_report(wrong, rep)
    bad = json.loads(json.dumps(rep))
    bad["memory_profile"]["layerwise"][3] += 16
    with pytest.raises(AssertionError):
        assert_page_matches_report(text, bad)


def test_bench_and_verify_add_their_results(benched):
    out, bench = benched
    text = (out / "report.html").read_text()
    rep = json.loads((out / "report.json").read_text())
    page = assert_page_matches_report(text, rep)
    counts = {lay["index"]: lay["count"] for lay in bench["layers"]}
    for row in page.layers:
        i = int(row["data-index"])
        assert int(row["data-count"]) == counts[i], f"layer {i}'s {bench['unit']}"
        assert _int(row["cells"][11]) == counts[i]
    assert int(page.totals["total-count"]) == bench["total"] >= sum(counts.values())  # the call's own work too
    assert page.summary["bench_flash_bytes"] == str(bench["flash_bytes"])
    assert page.summary["bench_sram_bytes"] == str(bench["sram_bytes"])
    assert page.summary["bench_total"] == str(bench["total"])
    assert 'id="section-verify"' in text and "bit-exact" in text and "onnxruntime float" in text
    assert "firmware ELF on qemu-m4" in text, "the flash plot shows the ELF's breakdown"
    results = read_results(text)
    assert results["bench"]["total"] == bench["total"] and [s["kind"] for s in results["sections"]] == ["verify"]


def test_the_next_compile_keeps_the_results_of_the_same_compile_and_drops_others(benched, tmp_path, capsys):
    out, bench = benched
    copy = tmp_path / "out"
    shutil.copytree(out, copy, symlinks=True)
    same = (MNIST, "--board", "qemu-m4", "--calib", MNIST_CALIB, "-o", copy, "--quiet")
    assert cli.main([str(a) for a in same]) == 0, capsys.readouterr().err
    text = (copy / "report.html").read_text()
    assert read_results(text)["bench"]["total"] == bench["total"] and 'id="section-verify"' in text
    other = (MNIST, "--board", "qemu-m4", "--calib", MNIST_CALIB, "-o", copy, "--quiet", "--kernels", "portable")
    assert cli.main([str(a) for a in other]) == 0, capsys.readouterr().err
    text = (copy / "report.html").read_text()
    assert read_results(text)["bench"] is None and 'id="section-verify"' not in text, "another compile's results"


def test_an_edited_page_is_never_overwritten(pages, tmp_path, capsys):
    """report.html is in the manifest like every output: a user's edit makes the folder refused."""
    out = tmp_path / "out"
    args = [str(MNIST), "--calib", str(MNIST_CALIB), "-o", str(out), "--quiet"]
    assert cli.main(args) == 0
    manifest = json.loads((out / ".mcucompile-manifest.json").read_text())
    assert "report.html" in manifest["files"]
    (out / "report.html").write_text((out / "report.html").read_text() + "<!-- my notes -->\n")
    assert cli.main(args) == 2
    assert "report.html (edited)" in capsys.readouterr().err
    assert (out / "report.html").read_text().endswith("<!-- my notes -->\n")


def test_sections_replace_their_kind_and_survive_the_round_trip(pages):
    """A command's section (the debug command adds one like this) is rendered from generic blocks; a new
    section of a kind replaces the old one; the embedded results rebuild the same page."""
    compiled = compile_model(MNIST, CompileOptions(progress=False, calib=str(MNIST_CALIB)))
    first = HtmlSection("debug", "Debug", (Paragraph("layer 3 first", "warning"),))
    section = HtmlSection("debug", "Per-layer debug", (
        Facts((("samples", "4"),)),
        Table(("layer", "SQNR dB", "clipped"), (("conv1", 31.5, 0.01), ("fc", float("inf"), None))),
        BarChart("SQNR per layer", ("0", "1"), (("SQNR (dB)", (31.5, 40.0)),), "dB", "layer"),
    ))
    page = HtmlReport(compiled.report).with_section(first).with_section(section)
    assert [s.title for s in page.sections] == ["Per-layer debug"]
    text = render_html(page)
    assert 'id="section-debug"' in text and 'id="plot-debug-2"' in text and "layer 3 first" not in text
    again = carried_page(compiled.report, text)
    assert again == page and render_html(again) == text
    other = compile_model(MNIST, CompileOptions(progress=False, calib=str(MNIST_CALIB), kernels="portable"))
    assert carried_page(other.report, text).sections == ()


# --- headless Chromium ----------------------------------------------------------------------------------------

class DevTools:
    """A minimal Chrome DevTools Protocol client over a WebSocket (RFC 6455, text frames; stdlib only)."""

    def __init__(self, url: str, timeout: float = 20.0):
        host_port, path = url.removeprefix("ws://").split("/", 1)
        host, port = host_port.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            assert chunk, "DevTools closed the connection during the handshake"
            head += chunk
        assert head.split(b"\r\n", 1)[0].split()[1] == b"101", head[:200]
        self.buffer = head.split(b"\r\n\r\n", 1)[1]
        self.next_id = 0
        self.events: list[dict] = []

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            assert chunk, "DevTools closed the connection"
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else
                                         bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                                         bytes([0x80 | 127]) + struct.pack(">Q", n))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _message(self) -> dict:
        data = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)  # a server's frames are not masked
            opcode = b0 & 0x0F
            if opcode == 9:  # ping
                self._send_frame(10, payload)
                continue
            assert opcode != 8, "DevTools closed the WebSocket"
            data += payload
            if b0 & 0x80:
                return json.loads(data)

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self._send_frame(1, json.dumps({"id": self.next_id, "method": method, "params": params}).encode())
        while True:
            msg = self._message()
            if msg.get("id") == self.next_id:
                assert "error" not in msg, f"{method}: {msg['error']}"
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, event: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        for msg in self.events:
            if msg.get("method") == event:
                return msg
        while time.monotonic() < deadline:
            msg = self._message()
            self.events.append(msg)
            if msg.get("method") == event:
                return msg
        raise AssertionError(f"no {event} within {timeout} s")

    def close(self) -> None:
        self.sock.close()


def console_problems(events: list[dict]) -> list[str]:
    """Errors and warnings the page produced: console calls, uncaught exceptions, browser log entries (a
    Content-Security-Policy refusal of a fetch is one)."""
    out = []
    for e in events:
        p = e.get("params", {})
        if e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
            out.append(f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p.get('args', [])]}")
        elif e.get("method") == "Runtime.exceptionThrown":
            out.append(f"exception: {p['exceptionDetails'].get('exception', {}).get('description') or p['exceptionDetails']}")
        elif e.get("method") == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
            out.append(f"log {p['entry']['level']}: {p['entry'].get('text')}")
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium with a DevTools connection to one page (one browser for the module's pages)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed: 'make test' installs it (apt-get install chromium)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    log = open(profile.parent / "chromium.log", "w")
    # --no-sandbox: Chromium's sandbox cannot start as root or in a container without user namespaces; the
    # browser only opens the local pages this test wrote
    proc = subprocess.Popen([exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--no-default-browser-check", "--disable-extensions", "--remote-debugging-port=0",
                             f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while not (active.is_file() and len(active.read_text().splitlines()) >= 2):
            assert proc.poll() is None, f"chromium exited ({proc.returncode}): {(profile.parent / 'chromium.log').read_text()[-2000:]}"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port within 20 s"
            time.sleep(0.05)
        port = int(active.read_text().split()[0])
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        page = next(t for t in targets if t["type"] == "page")
        dt = DevTools(page["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log"):
            dt.call(f"{domain}.enable")
        yield dt
        dt.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# Evaluated in the page: what rendered (the plots are in the DOM and have drawn boxes) and whether sorting works.
PROBE = """(() => {
  const plots = Array.from(document.querySelectorAll("svg.plot")).map(s => {
    const box = s.getBoundingClientRect();
    return {id: s.id, children: s.querySelectorAll("path, rect, line").length, width: box.width, height: box.height,
            drawn: Array.from(s.querySelectorAll("path.series, rect.part, rect.bar")).filter(e => {
              const b = e.getBBox(); return b.width > 0 || b.height > 0; }).length};
  });
  const table = document.getElementById("layers-table");
  const macs = () => Array.from(table.tBodies[0].rows).map(r => Number(r.dataset.macs));
  const th = table.tHead.rows[0].cells[5];
  th.click();
  const ascending = macs();
  th.click();
  const descending = macs();
  return JSON.stringify({title: document.title, rows: table.tBodies[0].rows.length, plots, ascending, descending,
                         sections: Array.from(document.querySelectorAll("section")).map(s => s.id)});
})()"""


def open_page(dt: DevTools, path: Path) -> tuple[dict, list[str]]:
    """Load ``path``, wait for its load event, run PROBE; returns its result and the console's problems."""
    dt.events.clear()
    dt.call("Page.navigate", url=path.resolve().as_uri())
    dt.wait_for("Page.loadEventFired")
    res = dt.call("Runtime.evaluate", expression=PROBE, returnByValue=True)
    assert "exceptionDetails" not in res, res
    time.sleep(0.2)  # a late console message or log entry still arrives with the next call
    dt.call("Runtime.evaluate", expression="1")
    return json.loads(res["result"]["value"]), console_problems(dt.events)


def assert_renders(probe: dict, problems: list[str], rows: int) -> None:
    assert not problems, problems
    assert probe["rows"] == rows
    plots = {p["id"]: p for p in probe["plots"]}
    assert {"plot-memory", "plot-flash", "plot-layers"} <= set(plots)
    for p in plots.values():
        assert p["children"] > 3 and p["width"] > 100 and p["height"] > 50, p
        assert p["drawn"] >= 1, f"{p['id']} draws nothing"
    assert probe["ascending"] == sorted(probe["ascending"]) and probe["descending"] == sorted(probe["ascending"])[::-1]


def test_pages_render_in_headless_chromium(browser, pages, benched, tmp_path):
    started = time.monotonic()
    for name, (text, rep) in pages.items():
        path = tmp_path / f"{name}.html"
        path.write_text(text)
        probe, problems = open_page(browser, path)
        assert_renders(probe, problems, len(rep["layers"]))
        assert probe["title"].startswith("mcucompile report: ")
    out, _ = benched
    probe, problems = open_page(browser, out / "report.html")
    assert_renders(probe, problems, len(json.loads((out / "report.json").read_text())["layers"]))
    assert {"bench", "section-verify"} <= set(probe["sections"])
    assert time.monotonic() - started < 30


def test_the_browser_check_sees_console_errors_and_fetches(browser, pages, tmp_path):
    """The check can fail: a script error, a console.error and an image fetched from the network are
    reported (the page's Content-Security-Policy refuses the fetch and says so)."""
    text, _ = pages["mnist"]
    bad = text.replace("</body>", '<img src="http://example.invalid/x.png"><script>console.error("broken");'
                                  "undefinedFunction();</script></body>")
    path = tmp_path / "bad.html"
    path.write_text(bad)
    _, problems = open_page(browser, path)
    joined = "\n".join(problems)
    assert "broken" in joined and "undefinedFunction" in joined, problems
    assert "Content Security Policy" in joined or "Content-Security-Policy" in joined, problems
