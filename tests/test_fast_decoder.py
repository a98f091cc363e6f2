"""The fast path computes exactly the article's function: outputs and every gradient, same weights."""
import numpy
import pytest

import svae
import chainer
import chainer.functions as F


from fast_decoder import FastSamplingDecoder
from model import SamplingDecoder, SamplingVAE
from rendering import render
import fast_decoder


def decoder_pair(n_latent, dtype, seed=0):
    numpy.random.seed(seed)
    with chainer.using_config('dtype', dtype):
        faithful, fast = SamplingDecoder(n_latent), FastSamplingDecoder(n_latent)
    fast.copyparams(faithful)
    return faithful, fast


def outputs_and_gradients(decoder, z, shape, gy):
    decoder.cleargrads()
    z = chainer.Variable(z.copy())
    y = decoder(z, shape)
    y.grad = gy
    y.backward()
    grads = {name: param.grad for name, param in decoder.namedparams()}
    return y.array, z.grad, grads


@pytest.mark.parametrize('dtype,rtol', [(numpy.float64, 1e-5), (numpy.float32, 1e-4)])
@pytest.mark.parametrize('shape', [(3, 1, 28, 28), (2, 1, 7, 13), (1, 1, 1, 4), (4, 1, 30, 5)])
def test_fast_path_equals_the_articles_decoder(dtype, rtol, shape, xp_devices):
    for device in xp_devices:
        faithful, fast = decoder_pair(5, dtype)
        faithful.to_device(device)
        fast.to_device(device)
        rng = numpy.random.RandomState(1)
        z = device.send(rng.randn(shape[0], 5).astype(dtype))
        gy = device.send(rng.randn(*shape).astype(dtype))
        y0, gz0, grads0 = outputs_and_gradients(faithful, z, shape, gy)
        y1, gz1, grads1 = outputs_and_gradients(fast, z, shape, gy)
        to_cpu = chainer.backend.CpuDevice().send
        atol = 1e-5 * float(abs(to_cpu(y0)).max())
        numpy.testing.assert_allclose(to_cpu(y1), to_cpu(y0), rtol=rtol, atol=atol)
        numpy.testing.assert_allclose(to_cpu(gz1), to_cpu(gz0), rtol=rtol, atol=rtol * float(abs(to_cpu(gz0)).max()))
        assert grads1.keys() == grads0.keys() and len(grads0) == 8
        for name in grads0:
            g0, g1 = to_cpu(grads0[name]), to_cpu(grads1[name])
            numpy.testing.assert_allclose(g1, g0, rtol=rtol, atol=rtol * float(abs(g0).max()), err_msg=name)


def test_fast_model_has_the_same_parameters_and_loss():
    numpy.random.seed(0)
    faithful = SamplingVAE(4)
    fast = SamplingVAE(4, decoder_class=FastSamplingDecoder)
    fast.copyparams(faithful)
    assert [n for n, _ in faithful.namedparams()] == [n for n, _ in fast.namedparams()]
    x = numpy.random.RandomState(2).uniform(size=(5, 1, 28, 28)).astype(numpy.float32)
    with chainer.using_config('train', False):
        numpy.random.seed(1)
        fast_loss = float(fast(x).array)
        numpy.random.seed(1)  # the same random binarisation of the encoder's input
        numpy.testing.assert_allclose(fast_loss, float(faithful(x).array), rtol=1e-5)


def test_fast_render_equals_faithful_render():
    faithful, fast = decoder_pair(3, numpy.float32)
    z = numpy.random.RandomState(3).randn(2, 3).astype(numpy.float32)
    numpy.testing.assert_allclose(render(fast, z, 17, 23, max_points=50), render(faithful, z, 17, 23),
                                  rtol=1e-5, atol=1e-6)


def test_split_rows_blocks_and_what_is_shared(monkeypatch):
    calls = []

    def add(out, a, b):
        calls.append((len(out), len(a), len(b)))
        numpy.add(a, b, out=out)
    monkeypatch.setattr(fast_decoder.os, 'cpu_count', lambda: 8)  # min(4, 8): four threads
    a = numpy.arange(10 * 3, dtype=numpy.float64).reshape(10, 3)
    shared_row = numpy.arange(3.0)[None]
    for b in (shared_row, numpy.ones(3)):  # fewer rows or fewer dimensions: shared, not split
        calls.clear()
        out = fast_decoder._split_rows(add, numpy.empty_like(a), a, b)
        numpy.testing.assert_array_equal(out, a + b)
        assert sorted(calls) == [(2, 2, len(b)), (2, 2, len(b)), (3, 3, len(b)), (3, 3, len(b))]
    calls.clear()
    fast_decoder._split_rows(add, numpy.empty((7, 3)), a[:7], shared_row)  # fewer than 2 rows a thread: one call
    assert calls == [(7, 7, 1)]
    calls.clear()
    fast_decoder._split_rows(add, numpy.empty((8, 3)), a[:8], shared_row)
    assert len(calls) == 4
    monkeypatch.setattr(fast_decoder.os, 'cpu_count', lambda: 2)
    calls.clear()
    fast_decoder._split_rows(add, numpy.empty_like(a), a, shared_row)
    assert sorted(calls) == [(5, 5, 1), (5, 5, 1)]
    monkeypatch.setattr(fast_decoder.os, 'cpu_count', lambda: None)  # unknown: one thread
    calls.clear()
    fast_decoder._split_rows(add, numpy.empty_like(a), a, shared_row)
    assert calls == [(10, 10, 1)]


def test_cpu_elementwise_steps_by_hand():
    a = numpy.array([[-1.0, 2.0], [0.5, -3.0], [1.0, 1.0], [-2.0, 0.0]])
    b = numpy.array([0.5, 1.0])
    numpy.testing.assert_array_equal(fast_decoder._bias_relu(a.copy(), b), numpy.maximum(a + b, 0))
    out = numpy.empty((4, 2))
    numpy.testing.assert_array_equal(fast_decoder._broadcast_sum_relu(a, b[None], out), numpy.maximum(a + b, 0))
    g, h = numpy.arange(1.0, 9.0).reshape(4, 2), numpy.array([[0.0, 1.0], [2.0, 0.0], [-1.0, 3.0], [0.0, 0.0]])
    numpy.testing.assert_array_equal(fast_decoder._relu_grad(g.copy(), h, numpy.empty((4, 2), bool)),
                                     numpy.where(h > 0, g, 0))
    numpy.testing.assert_array_equal(fast_decoder._column_sum(numpy, g), g.sum(axis=0))


def test_workspace_reuses_a_buffer_only_of_the_same_shape_dtype_and_device():
    import types
    space = fast_decoder.Workspace()
    first = space.take(numpy, 'h', (3, 4), numpy.float32)
    space.give(h=first)
    assert space.take(numpy, 'h', (3, 4), numpy.float32) is first
    assert space.take(numpy, 'h', (3, 4), numpy.float32) is not first  # taken and not given back: a new one
    for shape, dtype in (((4, 3), numpy.float32), ((3, 4), numpy.float64)):
        space.give(h=first)
        other = space.take(numpy, 'h', shape, dtype)
        assert other is not first and other.shape == shape and other.dtype == dtype
    space.give(h=first)
    allocated = []
    elsewhere = types.SimpleNamespace(empty=lambda shape, dtype: allocated.append(shape) or numpy.empty(shape, dtype))
    assert space.take(elsewhere, 'h', (3, 4), numpy.float32) is not first and allocated == [(3, 4)]


def test_each_step_reuses_the_workspace_of_the_last():
    faithful, fast = decoder_pair(3, numpy.float32)
    z = chainer.Variable(numpy.random.RandomState(0).randn(2, 3).astype(numpy.float32))
    F = chainer.functions
    F.sum(fast(z, (2, 1, 5, 6))).backward()
    held = {name: id(buffer) for name, buffer in fast.workspace.free.items()}
    assert set(held) == {'h1', 'h2', 'h3', 'ga', 'gb', 'mask'}
    assert fast.workspace.free['mask'].dtype == numpy.bool_  # a quarter of the memory of a float mask
    F.sum(fast(z, (2, 1, 5, 6))).backward()
    assert {name: id(buffer) for name, buffer in fast.workspace.free.items()} == held
    with chainer.no_backprop_mode():
        fast(z, (2, 1, 5, 6))  # no backward to come: the forward hands its buffers back at once
    assert {name: id(buffer) for name, buffer in fast.workspace.free.items()} == held


def test_a_step_allocates_no_large_array_once_the_workspace_is_warm():
    """The (points x 256) arrays of a step come from the workspace: after a first step, a forward and
    backward allocate nothing near the size of one of them (tracemalloc sees NumPy's allocations)."""
    import tracemalloc
    _, fast = decoder_pair(3, numpy.float32)
    z = chainer.Variable(numpy.random.RandomState(0).randn(8, 3).astype(numpy.float32))
    shape = (8, 1, 64, 64)
    buffer_bytes = 8 * 64 * 64 * 256 * 4  # 32 MiB
    chainer.functions.sum(fast(z, shape)).backward()
    tracemalloc.start()
    try:
        chainer.functions.sum(fast(z, shape)).backward()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < buffer_bytes / 2, f'{peak / 2**20:.1f} MiB allocated in a warm step'


# ---- the fused decoder + Bernoulli NLL of training on the CPU ----

def nll_and_gradients(decoder, nll, z, scale):
    """nll(z) * scale, d/dz and d/dparameters of it."""
    decoder.cleargrads()
    z = chainer.Variable(z.copy())
    loss = nll(z) * scale
    loss.backward()
    return float(loss.array), z.grad, {name: param.grad for name, param in decoder.namedparams()}


@pytest.mark.parametrize('workers', [1, 3])
@pytest.mark.parametrize('dtype,rtol', [(numpy.float64, 1e-9), (numpy.float32, 1e-4)])
@pytest.mark.parametrize('shape', [(3, 1, 28, 28), (2, 1, 30, 29), (1, 1, 7, 13), (5, 1, 1, 4)])
def test_fused_nll_equals_the_articles_decoder_and_bernoulli_nll(workers, dtype, rtol, shape, monkeypatch):
    """Value and every gradient of the summed Bernoulli NLL, against F.bernoulli_nll of SamplingDecoder's
    logits: non-square grids, 30 x 29 = 870 points in blocks of 392, 392 and 86, grey targets, an upstream
    gradient other than 1, and blocks shared by one worker or by more workers than there are images."""
    monkeypatch.setattr(fast_decoder, '_workers', lambda blocks: min(workers, blocks))
    monkeypatch.setattr(fast_decoder, 'BLOCK_ROWS', 392)
    faithful, fast = decoder_pair(5, dtype)
    rng = numpy.random.RandomState(1)
    z = rng.randn(shape[0], 5).astype(dtype)
    x = rng.uniform(size=shape).astype(dtype)
    u = numpy.linspace(-1, 1, shape[2], dtype=dtype)
    v = numpy.linspace(-1, 1, shape[3], dtype=dtype)
    loss0, gz0, grads0 = nll_and_gradients(faithful, lambda z: F.bernoulli_nll(x, faithful(z, shape), reduce='sum'), z, 0.37)
    loss1, gz1, grads1 = nll_and_gradients(fast, lambda z: fast.bernoulli_nll(x, z, u, v), z, 0.37)
    numpy.testing.assert_allclose(loss1, loss0, rtol=rtol)
    numpy.testing.assert_allclose(gz1, gz0, rtol=rtol, atol=rtol * abs(gz0).max())
    assert grads1.keys() == grads0.keys() and len(grads0) == 8
    for name in grads0:
        assert grads1[name].shape == grads0[name].shape and grads1[name].dtype == dtype, name
        numpy.testing.assert_allclose(grads1[name], grads0[name], rtol=rtol, atol=rtol * abs(grads0[name]).max(), err_msg=name)


@pytest.mark.parametrize('dtype', [numpy.float32, numpy.float64])
def test_block_buffers_have_the_parameters_dtype_and_a_bool_mask(dtype):
    """float32 training computes in float32 throughout (NumPy's float64 default would halve the speed)."""
    blocks = fast_decoder._Blocks(3, 500, 8, dtype, backprop=True)
    arrays = {name: a for name, a in vars(blocks).items() if isinstance(a, numpy.ndarray)}
    assert set(arrays) == {'h1', 'h2', 'h3', 'zeros', 'mask', 'gW_product', 'ones', 'gW2', 'gW3',
                           'gb2', 'gb3', 'gW4', 'gW1_uv', 'g1_z'}
    for name, a in arrays.items():
        assert a.dtype == (numpy.bool_ if name == 'mask' else dtype), name
    assert blocks.h1.shape == (min(500, fast_decoder.BLOCK_ROWS), 8) and blocks.gW_product.shape == (8, 8)
    assert blocks.gW1_uv.shape == (8, 2) and blocks.g1_z.shape == (3, 8)


def block_inputs(rows, units, seed=0):
    """A worker's buffers and one block's inputs: first-layer parts, the layers, targets, (u, v, 1)."""
    rng = numpy.random.RandomState(seed)
    W2, W3, W4 = (rng.randn(*shape).astype(numpy.float32) / 8 for shape in ((units, units), (units, units), (1, units)))
    b2, b3, b4 = (rng.randn(n).astype(numpy.float32) for n in (units, units, 1))
    h_uv, h_z = rng.randn(rows, units).astype(numpy.float32), rng.randn(units).astype(numpy.float32)
    x = rng.uniform(size=rows).astype(numpy.float32)
    uv1 = numpy.concatenate([rng.randn(rows, 2), numpy.ones((rows, 1))], axis=1).astype(numpy.float32)
    blocks = fast_decoder._Blocks(2, rows, units, numpy.float32, backprop=True)
    return blocks, (h_uv, h_z, fast_decoder._layers(W2, b2, W3, b3, W4, b4)), (x, W2, W3, W4[0], 0, uv1)


def test_a_block_computes_in_its_workers_buffers():
    """A block's forward and backward write every (rows x 256) and (256 x 256) product into its worker's
    buffers (a fresh array per block is paid for in page faults and in cache): tracemalloc sees no more allocated
    than half a (256 x 256) product (NumPy's casting buffers for the bool masks take 64 KiB)."""
    import tracemalloc
    rows, units = 784, 256
    blocks, forward, backward = block_inputs(rows, units)
    blocks.nll_backward(blocks.forward(*forward), *backward)  # warm: NumPy's first calls allocate caches
    tracemalloc.start()
    try:
        blocks.nll_backward(blocks.forward(*forward), *backward)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < units * units * 4 / 2, f'{peak} bytes allocated in a block (a 256 x 256 product: 262144)'


def test_the_fused_nll_allocates_its_workers_buffers_and_little_else(monkeypatch):
    """Beyond its workers' buffers, the first layer's (u, v) part, the two transposed weights and the gradients
    it returns, a fused forward allocates less than a quarter of one (rows x 256) buffer: float32 throughout
    (a float64 (u, v, 1) would make each block's last product a float64 copy of its gradient)."""
    import tracemalloc
    monkeypatch.setattr(fast_decoder, '_workers', lambda blocks: 1)
    _, fast = decoder_pair(8, numpy.float32)
    rng = numpy.random.RandomState(0)
    z, x = rng.randn(3, 8).astype(numpy.float32), rng.uniform(size=(3, 784)).astype(numpy.float32)
    u = numpy.linspace(-1, 1, 28, dtype=numpy.float32)
    uv, params = fast.points(u, u), [p.array for p in fast.params_in_order()]
    fast_decoder.FusedBernoulliNLL(uv, x).forward((z, *params))  # warm
    function = fast_decoder.FusedBernoulliNLL(uv, x)
    tracemalloc.start()
    try:
        function.forward((z, *params))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    buffers = fast_decoder._Blocks(3, 784, 256, numpy.float32, backprop=True)
    expected = (sum(a.nbytes for a in vars(buffers).values() if isinstance(a, numpy.ndarray)) + 784 * 256 * 4
                + 2 * 256 * 256 * 4 + sum(g.nbytes for g in function.grads))
    assert peak - expected < 784 * 256 * 4 / 4, f'{(peak - expected) / 2**10:.0f} KiB more than expected'


def test_a_nan_or_infinite_logit_gives_a_nan_loss_quietly():
    """train.py's check reports a non-finite loss in one line; NumPy's 'invalid value' warning would come first."""
    import warnings
    blocks, _, _ = block_inputs(2, 4)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        blocks.add_nll(numpy.array([numpy.inf, 1.0], numpy.float32), numpy.array([1.0, 0.0], numpy.float32))
    assert numpy.isnan(blocks.nll)


def test_fused_nll_without_backprop_is_the_same_sum_and_keeps_no_gradients():
    faithful, fast = decoder_pair(3, numpy.float64)
    rng = numpy.random.RandomState(2)
    z, x = rng.randn(2, 3), rng.uniform(size=(2, 1, 9, 44))
    u, v = numpy.linspace(-1, 1, 9), numpy.linspace(-1, 1, 44)
    expected = float(F.bernoulli_nll(x, faithful(z, x.shape), reduce='sum').array)
    with chainer.no_backprop_mode():
        function = fast_decoder.FusedBernoulliNLL(fast.points(u, v), x.reshape(2, -1))
        loss = function(z, *fast.params_in_order())
    numpy.testing.assert_allclose(float(loss.array), expected, rtol=1e-12)
    assert not hasattr(function, 'grads')


def test_workers_take_their_blocks_with_a_one_thread_blas(monkeypatch):
    """More than one worker: each multiplies with the BLAS held to one thread (two BLAS threads per worker
    fight over the cores), and the BLAS's own threads come back afterwards."""
    threadpoolctl = pytest.importorskip('threadpoolctl')
    blas = lambda: [i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas']
    if not blas():
        pytest.skip('no BLAS found by threadpoolctl')
    before, seen = blas(), []
    with threadpoolctl.threadpool_limits(2, 'blas'):
        fast_decoder._each_worker(lambda k: seen.append((k, blas())), 2)
        after = blas()
    assert sorted(seen) == [(0, [1] * len(before)), (1, [1] * len(before))]
    assert after == [2] * len(before)
    assert blas() == before


def test_one_worker_per_core_and_block_and_one_without_threadpoolctl(monkeypatch):
    monkeypatch.setattr(fast_decoder.os, 'sched_getaffinity', lambda pid: {0, 1, 2, 3}, raising=False)
    assert fast_decoder._workers(1) == 1 and fast_decoder._workers(3) == 3 and fast_decoder._workers(64) == 4
    monkeypatch.delattr(fast_decoder.os, 'sched_getaffinity')  # macOS, Windows: the CPU count
    monkeypatch.setattr(fast_decoder.os, 'cpu_count', lambda: 3)
    assert fast_decoder._workers(64) == 3
    monkeypatch.setattr(fast_decoder.os, 'cpu_count', lambda: None)  # unknown: one worker
    assert fast_decoder._workers(64) == 1
    monkeypatch.setattr(fast_decoder.os, 'cpu_count', lambda: 8)
    monkeypatch.setattr(fast_decoder, 'threadpoolctl', None)  # no way to hold the BLAS to one thread: one worker
    assert fast_decoder._workers(64) == 1
    monkeypatch.setattr(fast_decoder, 'BLOCK_ROWS', 392)
    assert fast_decoder._row_blocks(2, 785) == [(0, 0, 392), (0, 392, 784), (0, 784, 785),
                                           (1, 0, 392), (1, 392, 784), (1, 784, 785)]


@pytest.mark.parametrize('centers', [False, True])
def test_fast_model_trains_with_the_same_loss_and_gradients(centers):
    """SamplingVAE's training loss (its random binarisation and z sample drawn alike) and every parameter's
    gradient, with the fused NLL against the article's decoder; also on the pixel-centre grid."""
    numpy.random.seed(0)
    faithful = SamplingVAE(4, centers=centers)
    fast = SamplingVAE(4, centers=centers, decoder_class=FastSamplingDecoder)
    fast.copyparams(faithful)
    x = numpy.random.RandomState(2).uniform(size=(3, 1, 28, 28)).astype(numpy.float32)
    results = []
    for model in (faithful, fast):
        model.cleargrads()
        numpy.random.seed(1)
        loss = model(x)
        loss.backward()
        results.append((float(loss.array), {name: param.grad for name, param in model.namedparams()}))
    (loss0, grads0), (loss1, grads1) = results
    numpy.testing.assert_allclose(loss1, loss0, rtol=1e-5)
    assert grads1.keys() == grads0.keys()
    for name in grads0:
        numpy.testing.assert_allclose(grads1[name], grads0[name], rtol=1e-4, atol=1e-4 * abs(grads0[name]).max(), err_msg=name)


def test_the_fast_decoder_trains_through_the_fused_nll_and_the_articles_through_its_own_line():
    """The equality above holds either way; this is which way: FastSamplingDecoder's own bernoulli_nll, in one
    Function, and the article's F.bernoulli_nll(..., reduce='sum') for SamplingDecoder."""
    numpy.random.seed(0)
    x = numpy.random.RandomState(2).uniform(size=(2, 1, 28, 28)).astype(numpy.float32)
    z = chainer.Variable(numpy.random.RandomState(3).randn(2, 4).astype(numpy.float32))
    fast = SamplingVAE(4, decoder_class=FastSamplingDecoder).reconstruction_nll(x, z)
    assert isinstance(fast.creator, fast_decoder.FusedBernoulliNLL)
    faithful = SamplingVAE(4).reconstruction_nll(x, z)
    assert faithful.shape == () and not isinstance(faithful.creator, fast_decoder.FusedBernoulliNLL)
