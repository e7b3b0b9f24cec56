"""``handsdk bench`` runs a pipeline in its own process and rewrites its page, keeping the notes."""

from __future__ import annotations

from handsdk import bench


def test_bench_writes_its_tables_and_keeps_the_hand_written_notes(tmp_path):
    out = tmp_path / "benchmarks.md"
    notes = f"{bench.NOTES_BEGIN}\nObservations: written by hand, from the last run.\n{bench.NOTES_END}"
    out.write_text(f"# Benchmarks\n\nold header\n\n{notes}\n\n## old tables\n| stale | row |\n")
    assert bench.main(["synthetic", "--pipelines", "handsdk onnxruntime fp32", "--rounds", "1",
                       "--max-frames", "12", "--out", str(out)]) == 0
    text = out.read_text()
    assert notes in text and "old tables" not in text and "stale" not in text
    assert "1 alternating rounds" in text and "## Models alone" in text
    row = next(line for line in text.splitlines() if line.startswith("| handsdk onnxruntime fp32 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert float(cells[1]) > 0 and cells[2] == "—"  # FPS measured; no MediaPipe in this run, no ratio
    assert float(cells[5]) > 0  # CPU time per frame, every thread of the worker process
    assert cells[8] == "12/12"  # a hand in every rendered frame
    assert text.index(notes) < text.index("## Models alone")


def test_models_alone_skips_a_backend_whose_file_the_models_folder_lacks(tmp_path, monkeypatch, capsys):
    """A freshly exported folder has no TFLite files without litert-torch: the timing of the
    others is still reported, the TFLite row is skipped with the reason (it used to stop the bench)."""
    import json
    import shutil

    from handsdk.models import bundled_models_dir

    models = tmp_path / "models"
    shutil.copytree(bundled_models_dir(), models)
    manifest = json.loads((models / "manifest.json").read_text())
    for entry in manifest["models"].values():
        entry["files"].pop("tflite", None)
    (models / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("HANDSDK_MODELS", str(models))
    rows = bench.model_latency([("onnxruntime fp32, 1 thread", {"name": "onnxruntime", "options": {"threads": 1}}),
                                ("tflite (XNNPACK), 2 threads", {"name": "tflite", "options": {"threads": 2}})],
                               repeats=3)
    assert list(rows) == ["onnxruntime fp32, 1 thread"]
    assert rows["onnxruntime fp32, 1 thread"]["landmark"] > 0
    assert "tflite (XNNPACK), 2 threads: skipped" in capsys.readouterr().out
