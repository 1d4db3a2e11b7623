import torch

from ase_amden.training.ema import ExponentialMovingAverage


def test_ema_converges_and_round_trips():
    net = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        net.weight.zero_()
    ema = ExponentialMovingAverage(net, decay=0.5)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update(net)  # effective decay min(0.5, 2/11)
    expected = 1.0 - 2 / 11
    assert torch.allclose(ema.shadow["weight"], torch.full((1, 2), expected))
    for _ in range(60):
        ema.update(net)
    assert torch.allclose(ema.shadow["weight"], torch.ones(1, 2), atol=1e-12)
    other = ExponentialMovingAverage(torch.nn.Linear(2, 1, bias=False), decay=0.9)
    other.load_state_dict(ema.state_dict())
    assert other.num_updates == 61 and other.decay == 0.5
    target = torch.nn.Linear(2, 1, bias=False)
    other.copy_to(target)
    assert torch.equal(target.weight, ema.shadow["weight"])
