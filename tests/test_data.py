import pytest

from microgpt.data import DataError, Tokenizer, default_data_path, read_docs


def test_tokenizer_ids_and_bos():
    tok = Tokenizer.from_docs(['emma', 'bob'])
    assert tok.chars == ['a', 'b', 'e', 'm', 'o']
    assert tok.BOS == 5 and tok.vocab_size == 6
    assert tok.encode('emma') == [5, 2, 3, 3, 0, 5]
    assert tok.decode([5, 2, 3, 3, 0, 5]) == 'emma'


def test_unknown_character_and_empty_document():
    tok = Tokenizer.from_docs(['abc'])
    with pytest.raises(DataError, match=r"character 'Z' at index 1 of 'aZ' is not in the vocabulary 'abc'"):
        tok.encode('aZ')
    with pytest.raises(DataError, match='the document is empty'):
        tok.encode('')


def test_read_docs_strips_and_drops_blank_lines(tmp_path):
    p = tmp_path / 'd.txt'
    p.write_text('  ann \n\n bo\n   \n')
    assert read_docs(p) == ['ann', 'bo']
    with pytest.raises(DataError, match='data file not found'):
        read_docs(tmp_path / 'missing.txt')
    (tmp_path / 'blank.txt').write_text('\n \n')
    with pytest.raises(DataError, match='has no non-empty lines'):
        read_docs(tmp_path / 'blank.txt')


def test_default_data_path_prefers_env_then_input_txt_and_never_downloads_in_tests(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('MICROGPT_NAMES', raising=False)
    monkeypatch.setenv('MICROGPT_DATA', str(tmp_path / 'x.txt'))
    (tmp_path / 'x.txt').write_text('a\n')
    assert default_data_path() == tmp_path / 'x.txt'
    monkeypatch.delenv('MICROGPT_DATA')
    (tmp_path / 'input.txt').write_text('a\n')
    assert str(default_data_path()) == 'input.txt'
    (tmp_path / 'input.txt').unlink()
    with pytest.raises(DataError, match='no names data'):
        default_data_path(cache_dir=tmp_path / 'cache', download=False)
