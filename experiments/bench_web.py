"""Speed and exactness of the explorer page (web/export_web.py) in headless Chromium, both backends.

    python experiments/bench_web.py                      # frame times at 256x256 and 1024x1024, max pixel error
    python experiments/bench_web.py --screenshot result/explorer.png --page results/explorer/explorer.html

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
