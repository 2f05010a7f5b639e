"""The report speaks for the customers: NPS, CSAT and the complaint rate of the hand-computed
fixture (``tests.helpers.feedback``) in the summary and in a "Voice of the customer" table, with
the responses behind each, and the journey's NPS objective (50) marked as missed (NPS 40 from
10 responses, min_responses 10)."""

from __future__ import annotations

from cxmetrics.analysis.analyzer import analyze
from cxmetrics.analysis.sources import from_events
from cxmetrics.report import render_report
from cxmetrics.report.summary import voice_sentences
from cxmetrics.spec.load import parse_spec
from tests.helpers import feedback as fx

T0 = 1_700_000_000.0
SENTENCE = (
    "Customers of buy: NPS 40 from 10 responses; CSAT 70.0% from 10 responses; 3 complaints "
    "(15.0% of journeys started); NPS below its objective 50."
)


def test_the_summary_and_the_voice_table_carry_nps_csat_and_complaints() -> None:
    spec = parse_spec(fx.SPEC, "<spec>")
    timeline = from_events(spec, fx.events(T0), step=60.0)
    analysis = analyze(spec, timeline)
    assert voice_sentences(spec, analysis) == ([SENTENCE], 1)
    html = render_report(spec, timeline, analysis, generated=T0)
    assert SENTENCE in html
    assert "customers rate 1 journey below objective" in html
    section = html[html.index('<section id="voice">') :]
    section = section[: section.index("</section>")]
    assert (
        '<th scope="row">buy</th><td class="miss">40</td><td>10</td><td>70.0%</td><td>10</td>'
        "<td>3</td><td>15.0%</td></tr>"
    ) in section
