import pytest

from tfclf.data import clean


@pytest.mark.parametrize("step, text, expected", [
    ("lowercase", "Hello WORLD", "hello world"),
    ("whitespace", "  a \t b\n\nc  ", "a b c"),
    ("punctuation", "Don't stop, ok?!", "Don't stop ok"),
    ("html", "<p>Fish &amp; chips</p>", " Fish & chips "),
    ("emoji", "nice 😀👍🏽 day ✨", "nice  day "),
    ("urls", "see https://x.io/a?b=1 and www.y.org now", "see   and   now"),
    ("stopwords", "This is the best film of the year", "best film year"),
    ("non_alpha", "call 0800-123 now £5!", "call   now  "),
    ("lemmatize", "the cats were running", "the cat be run"),
])
def test_each_step(step, text, expected):
    assert clean.STEPS[step](text) == expected


def test_steps_apply_in_order():
    assert clean.apply(" <b>Visit</b> http://x.io NOW ", ("html", "urls", "lowercase", "whitespace")) == "visit now"
