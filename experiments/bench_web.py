"""Speed and exactness of the explorer page (web/export_web.py) in headless Chromium, both backends.

    python experiments/bench_web.py                      # frame times at 256x256 and 1024x1024, max pixel error
    python experiments/bench_web.py --screenshot result/explorer.png --page results/explorer/explorer.html
    python experiments/bench_web.py --sizes 256 --response  # also a slider moved on the default 448x448 canvas

--response times what a person feels on the default canvas (448x448 at a window of 1000x760): one slider
move, from the input to the handler's return, to the first changed canvas (a coarse frame) and to the full
frame, and the longest stretch the page answered nothing meanwhile (a 10 ms timer's longest gap); then a
drag of 10 moves 50 ms apart, each move's delay from when it was due to when its handler returned.

Needs Debian's chromium and chromium-driver and the selenium package (pip install -e .[test]). Here
WebGL2 runs on SwiftShader, Chromium's software renderer, so its times are a CPU's, not a GPU's.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout: model.py, svae/
from svae import ROOT
import numpy

from svae import cli
from model_files import load_model
from rendering import render

FLAGS = ('--headless', '--no-sandbox', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--window-size=1000,760')


def parse_args(argv=None):
    parser = cli.ArgumentParser(prog='bench_web.py', description=__doc__.split('\n')[0])
    parser.add_argument('--model', '-m', default=cli.PRETRAINED,
                        help='model to export (default: the pretrained model in results/)')
    parser.add_argument('--page', default=None, help='an exported page to measure (default: export --model afresh)')
    parser.add_argument('--sizes', type=cli.positive_int, nargs='+', default=[256, 1024], help='square frame sizes')
    parser.add_argument('--response', action='store_true',
                        help="also time a slider move's response on the default canvas (see above)")
    parser.add_argument('--screenshot', default=None, help='also save a screenshot of the page (PNG)')
    return parser.parse_args(argv)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which('chromium')
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_script_timeout(3600)  # a 1024x1024 frame of the fallback takes minutes on a CPU
    driver.command_executor.client_config.timeout = 3600
    return driver


def open_page(driver, page, query):
    driver.get(f'file://{os.path.abspath(page)}?{query}')
    while not driver.execute_script('return Boolean(window.explorer && window.explorer.idle)'):
        time.sleep(0.02)


def max_error(driver, model, page, query):
    """Max |page - render.py| over a 40x24 canvas, full image and a zoomed region, in 1/255 steps."""
    open_page(driver, page, 'size=40x24&' + query)
    z = numpy.random.RandomState(0).randn(1, model.n_latent).astype(numpy.float32)
    worst = 0.0
    for region in ((-1.0, -1.0, 1.0, 1.0), (-0.5, 0.25, 0.75, 1.5)):
        driver.execute_script('explorer.setLatent(arguments[0]); explorer.setRegion(...arguments[1])', z[0].tolist(), region)
        while not driver.execute_script('return explorer.idle'):
            time.sleep(0.02)
        rgba = numpy.array(driver.execute_script('return explorer.pixels()'), dtype=numpy.float64).reshape(24, 40, 4)
        expected = render(model.decoder, z, 24, 40, region=region)[0, 0]
        worst = max(worst, float(numpy.abs(rgba[..., 0] / 255 - expected).max() * 255))
    return worst


# In the page, as a person's input would come: a slider's input event in a task of its own. The canvas is
# compared at each animation frame (every 7th byte: a coarse frame changes far more); a 10 ms timer's
# longest gap is the longest time the page could not have answered anything.
RESPONSE_SCRIPT = '''
const [moves, gapMs] = arguments, finish = arguments[arguments.length - 1];
const view = document.getElementById('view'), slider = document.getElementById('z1');
const sample = () => { const d = view.getContext('2d').getImageData(0, 0, view.width, view.height).data;
                       let s = 0; for (let i = 0; i < d.length; i += 7) s = (s * 31 + d[i]) % 1000000007; return s; };
const result = {handler: [], lag: [], coarse: null, full: null, stall: 0};
let before = sample(), last = performance.now(), t0 = null;
const ticker = setInterval(() => { const now = performance.now(); result.stall = Math.max(result.stall, now - last); last = now; }, 10);
const watch = () => {
  if (result.coarse === null && t0 !== null && sample() !== before) result.coarse = performance.now() - t0;
  if (explorer.idle && result.handler.length === moves) {
    const now = performance.now();  // a frame drawn in one call ended just now: its gap has had no tick yet
    result.stall = Math.max(result.stall, now - last); result.full = now - t0; clearInterval(ticker); finish(result); return;
  }
  requestAnimationFrame(watch);
};
const move = (i, due) => {
  const start = performance.now();
  if (t0 === null) t0 = start;
  slider.value = -1.5 + 3 * (i + 1) / (moves + 1);
  slider.dispatchEvent(new Event('input'));
  const end = performance.now();
  result.handler.push(end - start); result.lag.push(end - due);
  if (i + 1 < moves) { const next = due + gapMs; setTimeout(() => move(i + 1, next), Math.max(0, next - performance.now())); }
};
last = performance.now();
const due = performance.now();
setTimeout(() => move(0, due), 0);
requestAnimationFrame(watch);
'''


def response(driver, page, query):
    """One slider move, then a drag of 10 moves 50 ms apart, on the default canvas: times in ms (see --help)."""
    results = []
    for moves, gap in ((1, 0), (10, 50)):
        open_page(driver, page, query)
        driver.execute_script('explorer.pickDigit(3)')
        while not driver.execute_script('return explorer.idle'):
            time.sleep(0.05)
        results.append(driver.execute_async_script(RESPONSE_SCRIPT, moves, gap))
    one, drag = results
    return (f"one move: handler {one['handler'][0]:.0f} ms, coarse frame {one['coarse']:.0f} ms, "
            f"full frame {one['full'] / 1000:.1f} s, longest stall {one['stall']:.0f} ms; "
            f"drag: worst move delay {max(drag['lag']):.0f} ms, longest stall {drag['stall']:.0f} ms, "
            f"full frame {drag['full'] / 1000:.1f} s after the first move")


def export_page(model_path):
    """The page web/export_web.py writes for the model, in a temporary directory."""
    page = os.path.join(tempfile.mkdtemp(), 'explorer.html')
    subprocess.run([sys.executable, os.path.join(ROOT, 'web', 'export_web.py'), '-m', model_path, '-o', page,
                    '--digits', '300'], check=True, stdout=subprocess.DEVNULL)
    return page


def main(argv=None):
    args = parse_args(argv)
    if not (shutil.which('chromium') and shutil.which('chromedriver')):
        cli.fail('bench_web.py', 'needs chromium and chromedriver (apt-get install chromium chromium-driver)')
    with cli.one_line_errors('bench_web.py'):
        model = load_model(args.model)
    page = args.page or export_page(args.model)
    driver = browser()
    try:
        print(f'page {page}: {os.path.getsize(page) / 2**20:.2f} MiB')
        for name, query in (('WebGL2', ''), ('JavaScript fallback', 'backend=js')):
            error = max_error(driver, model, page, query)
            open_page(driver, page, 'size=32x32&' + query)
            times = [driver.execute_script('return explorer.time(arguments[0], arguments[0])', size) for size in args.sizes]
            print(f'{name}: max |page - render.py| {error:.2f}/255; '
                  + ', '.join(f'{size}x{size} frame {ms / 1000:.2f} s' for size, ms in zip(args.sizes, times)), flush=True)
        if args.response:
            for name, query in (('WebGL2', ''), ('JavaScript fallback', 'backend=js')):
                print(f'{name}, 448x448 canvas: {response(driver, page, query)}', flush=True)
        if args.screenshot:
            open_page(driver, page, '')
            driver.execute_script('explorer.pickDigit(3)')
            while not driver.execute_script('return explorer.idle'):
                time.sleep(0.05)
            driver.save_screenshot(args.screenshot)
            print(f'wrote {args.screenshot}')
    finally:
        driver.quit()


if __name__ == '__main__':
    main()
