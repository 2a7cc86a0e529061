"""jieba tokenisation: boilerplate stop list, user dictionary, width folding, one instance per process."""
from __future__ import annotations

from indexer.text import get_jieba, stopwords, tokenize


def test_patent_boilerplate_is_dropped_and_content_kept():
    toks = tokenize("本发明公开了一种耐磨、抗粘钢复合涂层，其特征在于，所述涂层包括过渡层。")
    for boiler in ("本发明", "公开", "一种", "所述", "其特征在于", "包括"):
        assert boiler not in toks
    for content in ("耐磨", "涂层", "过渡"):
        assert content in toks


def test_demand_boilerplate_and_numbers_are_dropped():
    toks = tokenize("我们公司希望找到锂离子电池防爆技术，预算100万元，联系方式：张经理")
    assert "联系方式" not in toks and "100" not in toks and "我们" not in toks
    assert "防爆" in toks


def test_full_width_and_case_are_folded():
    assert tokenize("ＰＬＣ控制的５Ｇ基站") == tokenize("plc控制的5G基站")
    assert "plc" in tokenize("PLC控制") and "5g" in tokenize("5G基站")


def test_user_dictionary_keeps_technical_terms_whole():
    # 抗粘钢 is not in jieba's own dictionary; the shipped patent dictionary or HMM must keep it whole.
    assert "抗粘钢" in tokenize("抗粘钢复合涂层")


def test_one_jieba_instance_per_process():
    assert get_jieba() is get_jieba()


def test_stop_list_has_no_technical_content_words():
    assert {"方法", "装置", "系统", "材料", "电池", "涂层"}.isdisjoint(stopwords())


def test_empty_and_punctuation_only_text():
    assert tokenize("") == []
    assert tokenize("，。！？；：、") == []


def test_bigrams_and_dispatcher():
    from indexer.text import bigram_tokens, get_tokenizer

    assert bigram_tokens("锂电池 PLC 100") == ["锂电", "电池", "plc"]
    assert get_tokenizer("bigram") is bigram_tokens
    import pytest

    with pytest.raises(ValueError, match="jieba, jieba-nodict, jieba-nostop, bigram"):
        get_tokenizer("whitespace")


def test_user_dictionary_changes_segmentation():
    from indexer.text import jieba_tokens

    text = "一元羧酸与三元环"
    assert "一元羧酸" in jieba_tokens(text) and "一元羧酸" not in jieba_tokens(text, userdict=False)
