"""tools/mutation_score.py: mutmut's verdicts counted per module, a score of (killed + timeout) / mutants."""
import subprocess

import pytest

import mutation_score

LISTING = """    model.x_binarize__mutmut_1: killed
    model.xǁSamplingVAEǁ__call____mutmut_2: survived
    model.x_binarize__mutmut_3: timeout
    model_files.x_read_arrays__mutmut_1: killed
    fast_decoder.x__gpu_kernels__mutmut_4: no tests
    fast_decoder.xǁWorkspaceǁtake__mutmut_5: not checked
"""


def test_verdicts_are_counted_per_module(monkeypatch):
    monkeypatch.setattr(subprocess, 'run', lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=LISTING))
    found = mutation_score.verdicts()
    assert found['model.xǁSamplingVAEǁ__call____mutmut_2'] == ('model', 'survived')
    table = mutation_score.table(mutation_score.tally(found)).splitlines()
    assert table[2:] == ['| fast_decoder.py | 2 | 0 | 0 | 0 | 2 | 0.0% |',
                         '| model.py | 3 | 1 | 1 | 1 | 0 | 66.7% |',
                         '| model_files.py | 1 | 1 | 0 | 0 | 0 | 100.0% |']


def test_no_mutants_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(subprocess, 'run', lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout=''))
    monkeypatch.setattr(mutation_score.importlib.util, 'find_spec', lambda name: object())
    with pytest.raises(SystemExit) as exit_info:
        mutation_score.main(['--no-run'])
    assert 'reports no mutants' in str(exit_info.value.code)
