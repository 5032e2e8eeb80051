"""The report left with the venue and the ``verify --json`` shape: everything shown, outside text escaped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from epos_bridge.domain.verification import FlowResult, FlowRun, FlowStatus, StepResult
from epos_bridge.services.verification_report import (
    ReportFacts,
    VerificationReport,
    render_html,
    runs_to_json,
    standard_versions,
)

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def facts(**changes: object) -> ReportFacts:
    values: dict[str, object] = {
        "generated_at": T0,
        "bridge_version": "1.2.3",
        "venue": "The Copper Kettle",
        "software_house_id": "sh_kettle",
        "reseller_id": None,
        "environment": "sandbox",
        "api_url": "https://api.dojo.tech",
        "gateway_url": "wss://eu.ws.dojo.tech/epos",
        "adapter": "sqlite",
        "registered_capabilities": ("GetOrderById", "SearchOrders"),
        "versions": standard_versions(),
    }
    values.update(changes)
    return ReportFacts(**values)  # type: ignore[arg-type]


def runs() -> tuple[FlowRun, ...]:
    ok = FlowResult(
        "d00aa12a-7fb8-46a2-a22d-f4b560298353",
        "Pay at Table through EPOS Data API",
        FlowStatus.SUCCESS,
        T0,
        T0 + timedelta(seconds=2),
        (
            StepResult(
                "Lock the order",
                FlowStatus.SUCCESS,
                T0,
                T0 + timedelta(milliseconds=40),
                ("Order T4-0001 <b>locked</b>",),
            ),
            StepResult("Pay part 1 of 2", FlowStatus.SUCCESS, T0, T0 + timedelta(seconds=1.5)),
        ),
    )
    failed = FlowResult(
        "0f5c0000-0000-4000-8000-000000000001",
        "Get Order through EPOS Data API",
        FlowStatus.FAILURE,
        T0,
        T0 + timedelta(seconds=1),
        (
            StepResult(
                "Get the order",
                FlowStatus.FAILURE,
                T0,
                T0,
                ("GetOrder method not found", "Please register the GetOrder method on an EPOS Data API adapter"),
            ),
        ),
    )
    return (
        FlowRun("Pay at Table", {"tableId": "T4", "parts": "2"}, ok),
        FlowRun("Get Order", {"orderId": "7"}, failed),
        FlowRun("Bookings", {}, error="Dojo did not start the flow: <script>alert(1)</script>"),
    )


class TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(page: str) -> TextOf:
    parser = TextOf()
    parser.feed(page)
    return parser


def test_the_report_names_the_venue_ids_versions_and_every_flow_and_step() -> None:
    page = render_html(VerificationReport(facts(), runs()))
    text = " ".join(parsed(page).text)

    for expected in (
        "The Copper Kettle",
        "sh_kettle",
        "sandbox",
        "wss://eu.ws.dojo.tech/epos",
        "1.2.3",
        "2026-02-27",  # the Dojo API version
        "GetOrderById, SearchOrders",
        "2 of 3 flows did not succeed",
        "Pay at Table through EPOS Data API",
        "d00aa12a-7fb8-46a2-a22d-f4b560298353",
        "tableId = T4, parts = 2",
        "Lock the order",
        "40 ms",
        "1.5 s",
        "GetOrder method not found",
        "Please register the GetOrder method on an EPOS Data API adapter",
        "step 'Get the order' FAILURE",
    ):
        assert expected in text, expected


def test_text_from_outside_is_escaped_never_markup() -> None:
    page = render_html(VerificationReport(facts(venue="Bob's <Bar> & Grill"), runs()))
    result = parsed(page)
    assert "script" not in result.tags and "b" not in result.tags
    text = " ".join(result.text)
    assert "<script>alert(1)</script>" in text
    assert "Order T4-0001 <b>locked</b>" in text
    assert "Bob's <Bar> & Grill" in text


def test_a_report_where_everything_passed_says_so() -> None:
    report = VerificationReport(facts(registered_capabilities=()), runs()[:1])
    assert report.succeeded
    assert report.summary() == "All 1 flow succeeded"
    assert "All 1 flow succeeded" in render_html(report)
    assert VerificationReport(facts(), ()).summary() == "No flow was run"


def test_json_has_name_status_and_steps_for_each_flow_and_names_the_failing_step() -> None:
    document = json.loads(json.dumps(runs_to_json(runs())))
    assert [(flow["name"], flow["status"]) for flow in document] == [
        ("Pay at Table through EPOS Data API", "SUCCESS"),
        ("Get Order through EPOS Data API", "FAILURE"),
        ("Bookings", "FAILURE"),
    ]
    assert document[1]["failedStep"] == "Get the order"
    assert document[1]["steps"][0] == {
        "name": "Get the order",
        "status": "FAILURE",
        "startedAt": "2026-03-02T12:00:00.000Z",
        "finishedAt": "2026-03-02T12:00:00.000Z",
        "additionalInformation": [
            "GetOrder method not found",
            "Please register the GetOrder method on an EPOS Data API adapter",
        ],
    }
    assert document[2]["steps"] == [] and document[2]["error"].startswith("Dojo did not start")
    assert document[0]["params"] == {"tableId": "T4", "parts": "2"}


def test_where_a_dojo_payment_would_not_show_on_the_till_is_in_the_report_as_plain_text() -> None:
    warning = "payments.shown_by is not set: <name> the tables the POS's bill reads"
    result = parsed(render_html(VerificationReport(facts(till_warnings=(warning,)), runs())))
    text = " ".join(result.text)
    assert "Where a Dojo payment would not show on the till" in text
    assert warning in text
    assert "name" not in result.tags
    assert "would not show" not in " ".join(parsed(render_html(VerificationReport(facts(), runs()))).text)
