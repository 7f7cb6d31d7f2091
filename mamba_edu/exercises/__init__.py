"""Exercise checkers, one module per lesson.

Every checker returns a :class:`Feedback`: truthy when the answer is right, falsy otherwise,
and it always says *what* is wrong (never a bare ``False``). It never raises for a wrong
answer, so a notebook with unfinished exercises still runs top to bottom. Instructors can
grade with ``assert check_...(answer)`` — the assertion message is the feedback.

:func:`predict` asks the learner to commit a prediction before the cell that reveals it.
"""

from mamba_edu.exercises.feedback import Feedback
from mamba_edu.exercises.predict import Prediction, predict

__all__ = ["Feedback", "Prediction", "predict"]
