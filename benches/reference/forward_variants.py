"""PyTorch eager against its faster CPU variants on the same libtorch: AlexNet `features` on
32 slices 256x256 (random weights), medians of 7 after two warm-up runs; prints milliseconds
and the largest output difference from eager. The figures the README sets beside kneecam's
`cargo bench --bench cam`. Usage: .kneecam-python benches/reference/forward_variants.py [THREADS]
"""
import time, torch, torchvision, sys
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
torch.manual_seed(0)
f = torchvision.models.alexnet(weights=None).features.eval()
x = torch.randint(0, 256, (32, 1, 256, 256)).float().expand(32, 3, 256, 256).contiguous()
def bench(fn, n=7):
    fn(); fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    ts.sort(); return ts[len(ts)//2] * 1e3
with torch.no_grad():
    ref = f(x)
    print("eager no_grad", bench(lambda: f(x)))
with torch.inference_mode():
    print("eager inference_mode", bench(lambda: f(x)))
    fc = f.to(memory_format=torch.channels_last)
    xc = x.to(memory_format=torch.channels_last)
    out = fc(xc); print("cl diff", (out - ref).abs().max().item())
    print("channels_last", bench(lambda: fc(xc)))
    print("channels_last incl. input conversion", bench(lambda: fc(x.to(memory_format=torch.channels_last))))
    f2 = torchvision.models.alexnet(weights=None).features.eval(); f2.load_state_dict(f.state_dict())
    from torch.utils import mkldnn as mk
    fm = mk.to_mkldnn(f2)
    out = fm(x.to_mkldnn()).to_dense(); print("mkldnn diff", (out - ref).abs().max().item())
    print("mkldnn", bench(lambda: fm(x.to_mkldnn()).to_dense()))
