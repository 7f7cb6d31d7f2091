"""mamba_edu.exercises.predict: the prediction prompt of every lesson."""

import pytest

from mamba_edu.exercises import Feedback, predict


def choice():
    return predict("Where does Euler's pole go at Δ = 1.2 for λ = −1 ± i?", ["inside", "on", "outside"],
                   answer="outside", explanation="|1 + Δλ|² = (1 − 1.2)² + 1.2² > 1.")


def test_choice_right_and_wrong_give_the_answer_and_the_explanation():
    right, wrong = choice(), choice()
    fb = right.commit("outside")
    assert isinstance(fb, Feedback) and fb.ok and "outside" in fb.message and "1.2²" in fb.message
    fb = wrong.commit("inside")
    assert not fb.ok and "The answer: outside" in fb.message
    assert wrong.committed == "inside"


def test_a_commit_is_final():
    p = choice()
    p.commit("inside")
    again = p.commit("outside")
    assert not again.ok and "Already committed: 'inside'" in again.message
    assert p.committed == "inside" and not p.feedback.ok


def test_a_second_commit_repeats_a_right_verdict():
    """Re-running p.commit("outside") said "❌ Not yet. Already committed: 'outside'" after a right answer."""
    p = choice()
    assert p.commit("outside")
    again = p.commit("outside")
    assert again.ok and "Already committed: 'outside'" in again.message


def test_number_within_relative_tolerance():
    p = predict("How many steps?", answer=42.0, explanation="2π/(βΔ).", tolerance=0.05)
    assert p.is_right(43.9) and not p.is_right(44.2) and not p.is_right(-42)
    assert predict("x?", answer=3, explanation="e.").commit(3.2).ok
    assert not predict("x?", answer=3, explanation="e.", tolerance=0.0).commit(3.0001).ok


@pytest.mark.parametrize("kwargs, match", [
    (dict(question="", answer=1, explanation="e"), "question"),
    (dict(question="q", answer=1, explanation=" "), "explanation"),
    (dict(question="q", choices=["a"], answer="a", explanation="e"), "at least 2"),
    (dict(question="q", choices=["a", "a"], answer="a", explanation="e"), "distinct"),
    (dict(question="q", choices=["a", "b"], answer="c", explanation="e"), "not one of the choices"),
    (dict(question="q", answer="many", explanation="e"), "finite number"),
    (dict(question="q", answer=float("nan"), explanation="e"), "finite number"),
    (dict(question="q", answer=1.0, explanation="e", tolerance=-1), "tolerance"),
])
def test_bad_arguments_name_themselves(kwargs, match):
    with pytest.raises(ValueError, match=match):
        predict(**kwargs)


def test_bad_commits_are_refused_without_locking():
    p = choice()
    with pytest.raises(ValueError, match="one of"):
        p.commit("nowhere")
    q = predict("x?", answer=1.0, explanation="e")
    with pytest.raises(ValueError, match="finite number"):
        q.commit("1")
    assert p.committed is None and q.committed is None


def test_static_view_folds_the_answer_and_escapes_html():
    p = predict("Is 1 < 2 & 3 > 2?", ["yes", "no"], answer="yes", explanation="<both> hold.")
    text = p.to_html()
    assert "<details>" in text and text.index("<summary>") < text.index("<b>yes</b>")
    assert "1 &lt; 2 &amp; 3 &gt; 2" in text and "&lt;both&gt;" in text
    assert "yes" not in p.to_text().split("\n")[0] and "- no" in p.to_text()
    bundle = p._repr_mimebundle_()
    assert bundle["text/html"] == text and bundle["text/plain"] == p.to_text()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_widget_commit_locks_the_controls_and_shows_the_verdict():
    p = choice()
    box = p.widget
    (question, row, verdict) = box.children
    entry, button = row.children
    button.click()  # nothing picked yet: no commit
    assert p.committed is None and "Pick an answer" in verdict.value
    entry.value = "on"
    button.click()
    assert p.committed == "on" and entry.disabled and button.disabled
    assert "Not yet" in verdict.value and "outside" in verdict.value
    assert "mamba-predict" in box._dom_classes and "mamba-predict-commit" in button._dom_classes


def test_number_widget():
    p = predict("How large?", answer=0.5, explanation="half.")
    entry, button = p.widget.children[1].children
    entry.value = "0.52"
    button.click()
    assert p.feedback.ok and entry.disabled
    q = predict("How large?", answer=-0.3, explanation="negative.")
    entry, button = q.widget.children[1].children
    entry.value = " −0.31"  # the minus sign of the lesson text, pasted
    button.click()
    assert q.feedback.ok


@pytest.mark.parametrize("typed", ["", "abc", "nan"])
def test_number_widget_commits_nothing_until_a_number_is_typed(typed):
    """The number box was a FloatText, whose "nothing typed" is 0.0: Commit locked in 0 and said "Not yet"."""
    p = predict("How large?", answer=0.5, explanation="half.")
    (question, row, verdict) = p.widget.children
    entry, button = row.children
    entry.value = typed
    button.click()
    assert p.committed is None and not button.disabled and "Pick an answer first" in verdict.value
