"""The gateway's last line of defence: configured secrets replaced in any text before it leaves the process."""

from __future__ import annotations

import json
from collections.abc import Iterable

MASK = "***"
MIN_LENGTH = 4   # shorter "secrets" would mangle ordinary text; the allow-listed views keep them out anyway


class Redactor:
    """Replaces each configured secret (as written, and as JSON escapes it) with ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= MIN_LENGTH:
                forms.add(secret)
                forms.add(json.dumps(secret)[1:-1])                      # as it appears inside a JSON string
                forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text
