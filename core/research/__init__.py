"""Research workflow: saved, shareable and reproducible studies (`core.research.studies`)."""

from core.research.compare import Comparison, RerunReport
from core.research.studies import Studies, Study
from core.research.study_files import StudyFiles, studies_folder

__all__ = ["Comparison", "RerunReport", "Studies", "Study", "StudyFiles", "studies_folder"]
