"""scripts/benchmark_train.py: every row measured, ratios against BasicSR's stock ESRGANModel."""

import re
from pathlib import Path

import pytest

from realesrgan_ext.tools.train_benchmark import CONFIGS, STOCK
from tests.helpers import load_script

REPO = Path(__file__).resolve().parents[1]
main = load_script("benchmark_train").main


@pytest.mark.slow
def test_quick_run_prints_and_writes_every_ratio(tmp_path, capsys, one_torch_thread):
    out = tmp_path / "train.txt"
    assert main(["--quick", "--configs", "ours fp32 (defaults)", "ours bf16 + channels_last",
                 "--output", str(out)]) == 0
    table = capsys.readouterr().out.strip()
    assert out.read_text().strip() == table
    rows = {m[0].strip(): (float(m[1]), float(m[2]), float(m[3]), float(m[4]))
            for m in re.findall(r"^(.+?)\s+(\d+\.\d+)\s+(\d+\.\d+)x\s+(\d+\.\d+)-(\d+\.\d+)x$", table, re.M)}
    assert set(rows) == {STOCK, "ours fp32 (defaults)", "ours bf16 + channels_last"}
    assert rows[STOCK][1:] == (1.0, 1.0, 1.0) and all(s > 0 and low <= r <= high for s, r, low, high in rows.values())
    assert table.splitlines()[0].startswith("RRDB 8/1/4 x4")


def test_unknown_configuration_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--quick", "--configs", "ours turbo"])
    assert "unknown configuration(s) ['ours turbo']" in capsys.readouterr().err
    assert all(name in CONFIGS for name in ("ours bf16", "ours compile", "ours optimizer_impl=fused"))


@pytest.mark.slow
def test_finetune_benchmark_times_each_precision_in_its_own_process(tmp_path, capsys):
    import yaml

    opt = yaml.safe_load((REPO / "options" / "finetune_demo_x4plus.yml").read_text())
    opt["network_g"] = {"type": "RRDBGenerator", "num_feat": 8, "num_block": 1, "num_grow_ch": 4, "scale": 4}
    opt["path"]["pretrain_network_g"] = None
    opt["datasets"]["train"].update(crop_size=64, gt_size=64)
    del opt["train"]["perceptual_opt"]  # the VGG would be most of the time
    opt["network_d"].update(layers=["relu2_2"], num_feat=8)  # a small discriminator, still warmed up alone
    option = tmp_path / "tiny_finetune.yml"
    option.write_text(yaml.safe_dump(opt))
    out = tmp_path / "finetune.txt"
    assert main(["--finetune", str(option), "--configs", "fp32", "bf16", "--iterations", "2", "--threads", "1",
                 "--output", str(out)]) == 0
    table = capsys.readouterr().out.strip()
    assert out.read_text().strip() == table
    assert table.startswith("tiny_finetune.yml: RRDBGenerator from None, batch 2 x 64px")
    rows = re.findall(r"^(fp32|bf16)\s+(\d+\.\d+)\s+\((\d+\.\d+)-(\d+\.\d+)\)\s+(\d+\.\d+)\s+(\d+)\s+(-?\d+)$",
                      table, re.M)
    assert [r[0] for r in rows] == ["fp32", "bf16"]
    for _, median, fastest, slowest, cpu, peak, _added in rows:
        assert 0 < float(fastest) <= float(median) <= float(slowest) and float(cpu) > 0
        assert int(peak) > 100  # torch alone is more
