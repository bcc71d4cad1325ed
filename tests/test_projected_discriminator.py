"""ProjectedVGGDiscriminator: frozen offline VGG19 features, trainable heads, learns real vs. smeared fast."""

import pytest
import torch
from helpers import smooth_image

from realesrgan_ext.archs.projected_discriminator_arch import ProjectedVGGDiscriminator


def photo_batch(n: int = 4, size: int = 32) -> torch.Tensor:
    images = [torch.from_numpy(smooth_image(size, size, seed=s)[:, :, ::-1].copy()) for s in range(n)]
    return torch.stack(images).permute(0, 3, 1, 2).float().div(255)


def test_only_the_heads_are_parameters_and_saved():
    net = ProjectedVGGDiscriminator(layers=("relu2_2", "relu3_4"), num_feat=8)
    names = [name for name, _ in net.named_parameters()]
    assert names and all(name.startswith("heads.") for name in names)
    assert all(key.startswith("heads.") for key in net.state_dict())
    out = net(photo_batch(2))
    assert out.shape == (2, 32 * 32 // 4 + 32 * 32 // 16)  # one logit per position of relu2_2 and relu3_4
    assert net.to(torch.float64)(photo_batch(1).double()).dtype == torch.float64  # the VGG follows moves


def test_gradients_reach_the_input_and_the_heads_learn_real_from_smeared():
    torch.manual_seed(0)
    net = ProjectedVGGDiscriminator(num_feat=16)
    real = photo_batch(4) + 0.15 * torch.rand(4, 3, 32, 32)  # texture
    fake = torch.nn.functional.avg_pool2d(real, 5, 1, 2)  # the same pictures, smeared
    fake.requires_grad_(True)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3, betas=(0.5, 0.99))
    for step in range(60):
        real_logits, fake_logits = net(real), net(fake)
        loss = bce(real_logits, torch.ones_like(real_logits)) + bce(fake_logits, torch.zeros_like(fake_logits))
        if step == 0:
            first = float(loss)
            loss.backward(inputs=[fake], retain_graph=True)
            assert fake.grad is not None and fake.grad.abs().sum() > 0  # a generator would get a gradient
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss) < 0.5 * first
    assert (net(real).mean() > net(fake).mean()).item()


def test_unknown_layer_is_a_clear_error():
    with pytest.raises(ValueError, match="choose from"):
        ProjectedVGGDiscriminator(layers=("conv9_9",))


@pytest.mark.slow
def test_trains_through_basicsrs_loop_and_saves_only_its_heads(tmp_path):
    import shutil
    from pathlib import Path

    import yaml
    from helpers import run_train, write_pair_folders

    repo = Path(__file__).resolve().parents[1]
    shutil.copy(repo / "train.py", tmp_path / "train.py")
    for split in ("train", "val"):
        write_pair_folders(tmp_path / split, [f"{split}{i}" for i in range(2)], hr_size=32)
    opt = yaml.safe_load((repo / "tests" / "data" / "tiny_esrgan_x4.yml").read_text())
    opt.update(name="projected_d",
               network_d={"type": "ProjectedVGGDiscriminator", "layers": ["relu2_2"], "num_feat": 8})
    opt["train"].update(total_iter=4, net_d_init_iters=2)
    for split in ("train", "val"):
        opt["datasets"][split].update(dataroot_gt=str(tmp_path / split / "high_res"),
                                      dataroot_lq=str(tmp_path / split / "low_res"))
    opt["logger"].update(save_checkpoint_freq=4)
    (tmp_path / "opt.yml").write_text(yaml.safe_dump(opt))
    output = run_train(tmp_path, tmp_path / "opt.yml")
    assert "l_g_gan" in output and "l_d_real" in output
    saved = torch.load(tmp_path / "experiments" / "projected_d" / "models" / "net_d_4.pth", weights_only=True)
    assert saved["params"] and all(key.startswith("heads.") for key in saved["params"])
