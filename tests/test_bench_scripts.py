"""The benchmark scripts run on the CPU: the GPU benchmark's --dry-run measures everything on the
tiny model (so a GPU session only has to run it), and it refuses clearly without CUDA."""
import json

import torch


def test_gpu_bench_refuses_without_cuda(monkeypatch, capsys):
    from benchmarks import gpu_bench
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_bench.main([]) == 2
    assert "no CUDA device (use --dry-run" in capsys.readouterr().err


def test_gpu_bench_dry_run_measures_every_goal(tmp_path):
    from benchmarks import gpu_bench
    out = tmp_path / "gpu.json"
    assert gpu_bench.main(["--dry-run", "--batches", "1", "--no-diffusers-compiled", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["dry_run"] and data["device"] == "cpu"
    assert set(data["batches"]["1"]) == {"diffusers_eager", "latentloom_eager", "latentloom_compiled"}
    assert data["dynamo_graphs_added_by_edits"] == 0
    assert data["psnr_compiled_vs_eager_db"] > 40
    assert set(data["goals"]) == {"batch1_s_per_image<=0.25", "batch8_images_per_s>=12",
                                  "psnr_compiled_vs_eager>=40", "lora_vs_plain<=1.05", "lowvram_peak_gib<=2.5",
                                  "dynamo_graphs_added_by_edits==0"}
