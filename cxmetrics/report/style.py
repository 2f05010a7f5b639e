"""The report's look: one inline stylesheet and the palette the charts share with it.

System fonts only (nothing to download), status colours with text beside them (never colour
alone), tabular figures in tables, and a print layout that keeps each chart on one page.
"""

from __future__ import annotations

# status → (text, background, border, chart fill)
STATUS = {
    "red": ("#a40e26", "#ffebe9", "#ff8182", "#cf222e"),
    "amber": ("#7d4e00", "#fff8c5", "#d4a72c", "#d4a72c"),
    "green": ("#116329", "#dafbe1", "#4ac26b", "#2da44e"),
    "grey": ("#59636e", "#f6f8fa", "#d1d9e0", "#afb8c1"),
}
P50, P95, P99 = "#54aeff", "#0550ae", "#8250df"
TARGET = "#9a6700"
ON_TIME, CONVERSION = "#1a7f37", "#1b7c83"
CHECKS = ("#0550ae", "#8250df", "#bc4c00", "#1b7c83", "#bf3989")

_STATUS_CSS = "".join(
    f".badge.{name}{{color:{fg};background:{bg};border-color:{border}}}"
    f".summary.{name}{{border-left-color:{fill}}}"
    f".kpi.{name} .value{{color:{fg}}}"
    for name, (fg, bg, border, fill) in STATUS.items()
)

CSS = (
    """
:root{--ink:#1f2328;--muted:#59636e;--line:#d8dee4;--bg:#f6f8fa;--bad:#a40e26}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);
 font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1240px;margin:0 auto;padding:8px 28px 48px}
.top{background:#fff;border-bottom:1px solid var(--line)}
.top>div{max-width:1240px;margin:0 auto;padding:20px 28px 14px}
h1{font-size:26px;line-height:1.25;margin:0 0 4px;font-weight:650}
h2{font-size:20px;margin:0 0 12px;font-weight:650}
h3{font-size:17px;margin:0 0 6px;font-weight:650}
.sub,.meta,figcaption,.note,footer{color:var(--muted)}
.sub{margin:0}
nav{margin-top:10px;font-size:14px}
nav a{color:#0550ae;text-decoration:none;margin-right:16px}
nav a:hover,nav a:focus{text-decoration:underline}
a{color:#0550ae}
section,article{background:#fff;border:1px solid var(--line);border-radius:8px;
 padding:18px 22px;margin:18px 0}
article{margin:14px 0}
section>article{border-color:#e6eaef}
.summary{border-left:6px solid}
.summary h2{font-size:22px;margin-bottom:8px}
.summary ul{margin:0;padding-left:20px}
.summary li{font-size:17px;margin:6px 0}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;
 background:none;border:0;padding:0}
.kpi{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.kpi .label{font-size:13px;color:var(--muted)}
.kpi .value{font-size:24px;font-weight:650;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:14px;font-variant-numeric:tabular-nums}
caption{text-align:left;color:var(--muted);padding:0 0 8px}
th,td{padding:6px 9px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
thead th{background:var(--bg);color:var(--muted);font-weight:600;font-size:13px}
th[scope=row],th[scope=rowgroup],.left{text-align:left}
tr.group th{background:#fff;padding-top:14px;font-size:13px;color:var(--muted);
 font-weight:650;text-transform:uppercase;letter-spacing:.04em}
tbody th[scope=row]{font-weight:600}
td.wrap{white-space:normal;min-width:240px}
.small{display:block;font-size:12px;color:var(--muted)}
.funnel svg{max-width:860px}
tbody tr:hover{background:#f6f8fa}
.miss,td.worse{color:var(--bad);font-weight:650}
td.better{color:#116329;font-weight:650}
.map svg{max-width:760px}
ol.paths{margin:4px 0 0;padding-left:22px;font-size:14px}
ol.paths li{margin:4px 0}
.badge{display:inline-block;padding:0 9px;border:1px solid;border-radius:999px;font-size:12px;
 font-weight:650;line-height:20px;white-space:nowrap}
.badge::before{content:"\\25CF\\00A0"}
h3 .badge{vertical-align:2px;margin-left:8px}
.meta{margin:0 0 8px;font-size:14px}
.notes{margin:6px 0 10px;padding-left:20px}
figure{margin:14px 0 0}
figcaption{font-size:13px;font-weight:600;margin-bottom:2px}
svg.chart{display:block;width:100%;height:auto}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:8px 20px}
.legend{list-style:none;margin:2px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:4px 16px;
 font-size:12px;color:var(--muted)}
.key{display:inline-block;width:18px;border-top:3px solid;vertical-align:middle;margin-right:5px}
.key.dashed{border-top-style:dashed;border-top-width:2px}
.key.band{height:11px;border:0;background:#ffd8d3;border-left:2px solid #cf222e}
details{margin-top:12px;font-size:14px}
summary{cursor:pointer;color:#0550ae}
.note{font-size:14px}
footer{font-size:13px;margin-top:24px}
@media print{body{background:#fff}nav{display:none}section,article,figure{break-inside:avoid}
 .top{border:0}}
"""
    + _STATUS_CSS
)
