"""The prompt book and prompt files: plain Python, no Textual, no tensors.

A headless user (script, test, server) drives these with an engine and no UI.
"""

from explorer.session.book import LastPromptError, Prompt, PromptBook
from explorer.session.lane import Edit, Job, Lane, Synced
from explorer.session.files import LoadedPrompt, PromptFileError, load_prompt_file, save_prompt
from explorer.session.start import StartPrompt, open_prompt, read_start_prompt

__all__ = [
    "Edit",
    "Job",
    "Lane",
    "Synced",
    "LastPromptError",
    "LoadedPrompt",
    "Prompt",
    "PromptBook",
    "PromptFileError",
    "load_prompt_file",
    "save_prompt",
    "StartPrompt",
    "open_prompt",
    "read_start_prompt",
]
