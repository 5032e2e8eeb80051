"""Terminal-session statuses and notifications in staff's words (the counter reports codes)."""

from __future__ import annotations

from epos_bridge.domain.terminal_sessions import CREATING

STATUS_WORDS = {
    "InitiateRequested": "Sending to the terminal…",
    "Initiated": "Waiting for the card",
    "Authorized": "Authorised, waiting for capture",
    "Captured": "Approved",
    "CancelRequested": "Cancelling…",
    "Canceled": "Cancelled",
    "SignatureVerificationRequired": "Check the customer's signature",
    "SignatureVerificationAccepted": "Approved (signature accepted)",
    "SignatureVerificationRejected": "Signature rejected: payment reversed",
    "Expired": "Expired: nobody presented a card",
    "Declined": "Declined by the card issuer",
    CREATING: "Checking with Dojo whether the terminal started…",
}

NOTIFICATION_WORDS = {
    "PresentCard": "Present card",
    "InsertCard": "Insert card",
    "EnterPin": "Enter PIN",
    "PleaseWait": "Please wait",
    "Approved": "Approved",
    "Declined": "Declined",
    "PresentOnlyOneCard": "Present only one card",
    "RemoveCard": "Remove card",
    "CardUnsupported": "Card not supported",
    "CardError": "Card error: try again",
    "ReEnterCard": "Re-enter card",
}


def in_words(status: str) -> str:
    return STATUS_WORDS.get(status, status)


def notification_in_words(notification: str) -> str:
    """``notificationType`` is an open set (contract §5.5, §6 E2): unknown values shown as given."""
    return NOTIFICATION_WORDS.get(notification, notification)
