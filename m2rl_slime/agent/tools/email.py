"""E-mail toolkit: read, search, send, delete, forward and reply (NeMo-Gym `EmailTool` semantics)."""

from __future__ import annotations

from typing import Any

from ..state import WorkplaceState
from ._common import NOW, Param, ToolSpec, next_id, paginate, parse_timestamp

_SEARCH_FIELDS = ("subject", "body", "sender/recipient")


def _find(state: WorkplaceState, email_id: str) -> dict[str, Any] | None:
    table = state["emails"]
    idx = table.col("email_id")
    for row in table.rows():
        if row[idx] == email_id:
            return table.record(row)
    return None


def get_email_information_by_id(state: WorkplaceState, email_id: str | None = None, field: str | None = None) -> Any:
    if not email_id:
        return "Email ID not provided."
    if not field:
        return "Field not provided."
    email = _find(state, email_id)
    if email is None:
        return "Email not found."
    if field in email:
        return {field: email[field]}
    return f"Field '{field}' not found. Available fields: {', '.join(email)}"


def search_emails(
    state: WorkplaceState,
    query: str = "",
    date_min: str | None = None,
    date_max: str | None = None,
    page: int = 1,
    page_size: int = 5,
) -> Any:
    """E-mails whose subject, body and correspondent together contain every query word; newest first."""
    table = state["emails"]
    words = query.lower().split()
    cols = [table.col(c) for c in _SEARCH_FIELDS]
    sent = table.col("sent_datetime")
    try:
        hits = []
        for row in table.rows():
            text = " ".join("nan" if row[i] is None else str(row[i]) for i in cols).lower()
            if all(word in text for word in words):
                hits.append((parse_timestamp(row[sent]), row))
        hits.sort(key=lambda hit: hit[0], reverse=True)
        # each bound is parsed only while e-mails remain to filter, as in the reference
        if date_min and hits:
            low = parse_timestamp(date_min).date()
            hits = [hit for hit in hits if hit[0].date() >= low]
        if date_max and hits:
            high = parse_timestamp(date_max).date()
            hits = [hit for hit in hits if hit[0].date() <= high]
    except ValueError as exc:
        return f"Error searching emails: {exc}"
    emails = [table.record(row) for _, row in hits]
    if not emails:
        return "No emails found."
    return paginate(emails, page, page_size, "emails", "total_emails")


def send_email(
    state: WorkplaceState, recipient: str | None = None, subject: str | None = None, body: str | None = None
) -> Any:
    if not recipient or not subject or not body:
        return "Recipient, subject, or body not provided."
    if "@" not in recipient or "." not in recipient:
        return "Invalid recipient email address."
    table = state["emails"]
    email_id = next_id(table.values("email_id"), width=None)
    table.append(
        {
            "email_id": email_id,
            "inbox/outbox": "outbox",
            "sender/recipient": recipient.lower(),
            "subject": subject,
            "sent_datetime": NOW,
            "body": body,
        }
    )
    return "Email sent successfully."


def delete_email(state: WorkplaceState, email_id: str | None = None) -> Any:
    if not email_id:
        return "Email ID not provided."
    table = state["emails"]
    keys = table.keys_where("email_id", email_id)
    if not keys:
        return "Email not found."
    for key in keys:
        table.delete(key)
    return "Email deleted successfully."


def forward_email(state: WorkplaceState, email_id: str | None = None, recipient: str | None = None) -> Any:
    if not email_id or not recipient:
        return "Email ID or recipient not provided."
    if "@" not in recipient or "." not in recipient:
        return "Invalid recipient email address."
    email = _find(state, email_id)
    if email is None:
        return "Email not found."
    result = send_email(state, recipient.lower(), f"FW: {email['subject']}", email["body"])
    if "Error" in result or "Invalid" in result:
        return result
    return "Email forwarded successfully."


def reply_email(state: WorkplaceState, email_id: str | None = None, body: str | None = None) -> Any:
    if not email_id or not body:
        return "Email ID or body not provided."
    email = _find(state, email_id)
    if email is None:
        return "Email not found."
    result = send_email(state, email["sender/recipient"], f"RE: {email['subject']}", body)
    if "Error" in result or "Invalid" in result:
        return result
    return "Email replied successfully."


_ID = Param("email_id", required=True, description="Unique id of the e-mail")
_FIELD_HELP = "Field to return: email_id, inbox/outbox, sender/recipient, subject, sent_datetime or body"
SPECS = (
    ToolSpec(
        "email_get_email_information_by_id",
        "read",
        "Return one field of the e-mail with the given id.",
        (_ID, Param("field", required=True, description=_FIELD_HELP)),
        get_email_information_by_id,
    ),
    ToolSpec(
        "email_search_emails",
        "read",
        "Search e-mails whose subject, body and sender/recipient together contain every word of the query; "
        "newest first, paginated.",
        (
            Param("query", description="Words to look for in the subject, body or sender/recipient"),
            Param("date_min", description="Earliest sent date, inclusive (YYYY-MM-DD)"),
            Param("date_max", description="Latest sent date, inclusive (YYYY-MM-DD)"),
            Param("page", "integer", description="Result page to return"),
            Param("page_size", "integer", description="E-mails per page"),
        ),
        search_emails,
    ),
    ToolSpec(
        "email_send_email",
        "create",
        "Send an e-mail.",
        (
            Param("recipient", required=True, description="Recipient's e-mail address"),
            Param("subject", required=True, description="Subject line"),
            Param("body", required=True, description="Message text"),
        ),
        send_email,
    ),
    ToolSpec("email_delete_email", "delete", "Delete the e-mail with the given id.", (_ID,), delete_email),
    ToolSpec(
        "email_forward_email",
        "create",
        "Forward the e-mail with the given id to a recipient.",
        (_ID, Param("recipient", required=True, description="Recipient's e-mail address")),
        forward_email,
    ),
    ToolSpec(
        "email_reply_email",
        "create",
        "Reply to the e-mail with the given id.",
        (_ID, Param("body", required=True, description="Reply text")),
        reply_email,
    ),
)
