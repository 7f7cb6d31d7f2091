"""Predict before you see: a question the learner answers *before* the cell that shows the result.

``predict(question, choices, answer=..., explanation=...)`` is a multiple-choice question;
``predict(question, answer=2.5, explanation=..., tolerance=0.1)`` asks for a number. In JupyterLab it
is a small widget: pick a choice (or type a number), press **Commit**, and it says whether the
prediction was right and why — the next cell then shows the computation. Once committed, the answer
is locked: the point is to guess first. Without a widget front end (the docs site, a static
notebook viewer) it shows the question with the answer folded in an HTML ``<details>``.
``Prediction.commit(value)`` does the same from code and returns a
:class:`~mamba_edu.exercises.feedback.Feedback`.

Used in every lesson.
"""

import html
import math
from numbers import Real

from mamba_edu.exercises.feedback import Feedback


class Prediction:
    """A prediction prompt (see :func:`predict`).

    Attributes
    ----------
    question, choices, answer, explanation, tolerance
        As given to :func:`predict`.
    committed : str or float or None
        The learner's committed answer (None until :meth:`commit`).
    feedback : Feedback or None
        The verdict on the committed answer.
    """

    def __init__(self, question, choices=None, *, answer, explanation, tolerance=0.1):
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"question must be a non-empty str, got {question!r}")
        if not isinstance(explanation, str) or not explanation.strip():
            raise ValueError(f"explanation must be a non-empty str, got {explanation!r}")
        if choices is not None:
            choices = [str(c) for c in choices]
            if len(choices) < 2 or len(set(choices)) != len(choices):
                raise ValueError(f"choices must be at least 2 distinct options, got {choices!r}")
            if str(answer) not in choices:
                raise ValueError(f"answer {answer!r} is not one of the choices {choices!r}")
            answer = str(answer)
        else:
            if isinstance(answer, bool) or not isinstance(answer, Real) or not math.isfinite(answer):
                raise ValueError(f"without choices, answer must be a finite number, got {answer!r}")
            if isinstance(tolerance, bool) or not isinstance(tolerance, Real) or not tolerance >= 0:
                raise ValueError(f"tolerance must be a number ≥ 0 (relative), got {tolerance!r}")
            answer = float(answer)
        self.question, self.choices, self.answer = question, choices, answer
        self.explanation, self.tolerance = explanation, tolerance
        self.committed, self.feedback = None, None
        self._widget = None

    # -- the check ------------------------------------------------------------------------
    def is_right(self, value):
        """Whether ``value`` is the answer (numbers: within the relative ``tolerance``)."""
        if self.choices is not None:
            return str(value) == self.answer
        return abs(float(value) - self.answer) <= self.tolerance * max(abs(self.answer), 1e-300)

    def commit(self, value):
        """Lock in ``value`` (a choice, or a number) and return the verdict with the explanation.

        A second commit is refused: the feedback repeats the first commit's verdict and says what was committed.
        """
        if self.committed is not None:  # e.g. the cell re-run: the first verdict stands, right or wrong
            return Feedback(self.feedback.ok, f"Already committed: {self.committed!r}. {self.feedback.message}")
        if self.choices is not None and str(value) not in self.choices:
            raise ValueError(f"value must be one of {self.choices!r}, got {value!r}")
        if self.choices is None:
            if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
                raise ValueError(f"value must be a finite number, got {value!r}")
            value = float(value)
        self.committed = str(value) if self.choices is not None else value
        message = f"The answer: {self._answer_text()}. {self.explanation}"
        self.feedback = Feedback.right(message) if self.is_right(value) else Feedback.wrong(message)
        return self.feedback

    # -- static display (docs site, no kernel) -----------------------------------------
    def _answer_text(self):
        return self.answer if self.choices is not None else f"{self.answer:g}"

    def to_html(self):
        """The question, the choices, and the answer folded in a ``<details>`` element."""
        parts = [f'<div class="mamba-predict-static"><p><b>Predict first.</b> {html.escape(self.question)}</p>']
        if self.choices is not None:
            parts.append("<ul>" + "".join(f"<li>{html.escape(c)}</li>" for c in self.choices) + "</ul>")
        else:
            parts.append("<p><i>Answer with a number.</i></p>")
        parts.append(f"<details><summary>Answer (commit yours first)</summary><p><b>{html.escape(self._answer_text())}"
                     f"</b>. {html.escape(self.explanation)}</p></details></div>")
        return "".join(parts)

    def to_text(self):
        lines = [f"Predict first. {self.question}"]
        lines += [f"  - {c}" for c in self.choices] if self.choices is not None else ["  (a number)"]
        return "\n".join(lines + ["  (answer folded: run the notebook to commit yours)"])

    def __repr__(self):
        return self.to_text()

    # -- the widget -------------------------------------------------------------------------
    @property
    def widget(self):
        """The ipywidgets view (built on first use): choices or a number box, Commit, the verdict."""
        if self._widget is None:
            self._widget = self._build_widget()
        return self._widget

    def _build_widget(self):
        import ipywidgets as W

        question = W.HTML(f"<b>Predict first.</b> {html.escape(self.question)}")
        if self.choices is not None:
            entry = W.ToggleButtons(options=self.choices, value=None, style={"button_width": "auto"})
        else:  # a text box: a FloatText turns "nothing typed yet" into 0.0, which Commit would lock in
            entry = W.Text(value="", placeholder="a number", description="your number",
                           style={"description_width": "initial"})
        entry.add_class("mamba-predict-entry")
        button = W.Button(description="Commit", button_style="primary", icon="lock")
        button.add_class("mamba-predict-commit")
        verdict = W.HTML("")
        verdict.add_class("mamba-predict-verdict")

        def on_commit(_):
            value = entry.value if self.choices is not None else _typed_number(entry.value)
            if value is None:
                verdict.value = "<i>Pick an answer first.</i>" if self.choices is not None else \
                    f"<i>Pick an answer first: type a number (got {html.escape(repr(entry.value))}).</i>"
                return
            feedback = self.commit(value)
            entry.disabled = button.disabled = True
            verdict.value = f"<p>{html.escape(str(feedback))}</p><p><i>The next cell shows it.</i></p>"

        button.on_click(on_commit)
        box = W.VBox([question, W.HBox([entry, button]), verdict])
        box.add_class("mamba-predict")
        box.mamba_prediction = self
        return box

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/plain": self.to_text(), "text/html": self.to_html()}
        try:
            view = self.widget._repr_mimebundle_(include=include, exclude=exclude)
        except ImportError:  # no ipywidgets: the static view only
            return bundle
        if view:  # a kernel with a widget front end: the widget, with the static view as fallback
            bundle.update({k: v for k, v in view.items() if k != "text/plain"})
        return bundle


def _typed_number(text):
    """The finite number typed in ``text`` (a Unicode minus − is read as -), or None."""
    try:
        value = float(text.strip().replace("−", "-"))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def predict(question, choices=None, *, answer, explanation, tolerance=0.1):
    """A prediction prompt: the learner commits an answer before the cell that reveals it.

    Parameters
    ----------
    question : str
    choices : sequence of str, optional
        The options of a multiple-choice question; without them the answer is a number.
    answer : str or float
        One of ``choices``, or the number.
    explanation : str
        Why, shown once the learner has committed (and folded on the docs site).
    tolerance : float, default 0.1
        For a number: the relative error that still counts as right.

    Returns
    -------
    Prediction
        Displays as a widget in a notebook (static HTML without a widget front end);
        ``.commit(value)`` answers from code.

    Examples
    --------
    >>> p = predict("Where does forward Euler's pole go at Δ = 1.2?", ["inside", "outside"],
    ...             answer="outside", explanation="|1 + Δλ| > 1.")
    >>> bool(p.commit("outside"))
    True
    """
    return Prediction(question, choices, answer=answer, explanation=explanation, tolerance=tolerance)
