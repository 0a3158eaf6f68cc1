//! The document's stylesheet, inlined into the page. Only locally installed fonts are named
//! (no `@font-face` URLs): the page must print offline and leak nothing to third parties.
//! Logical properties (`inset-inline-*`, `text-align: end`) make one sheet serve RTL and LTR.

pub const CSS: &str = r#"
*{box-sizing:border-box;-webkit-print-color-adjust:exact;print-color-adjust:exact}
html{background:#eef1ec}
body{margin:0;color:#1d2a1f;font:14px/1.55 "Noto Naskh Arabic","Noto Sans Arabic","Noto Sans","DejaVu Sans","Segoe UI",Tahoma,Arial,sans-serif}
.sheet{width:210mm;min-height:297mm;margin:16px auto;padding:16mm 15mm;background:#fff;box-shadow:0 1px 6px rgba(0,0,0,.15)}
header.top{display:flex;justify-content:space-between;align-items:flex-start;gap:24px;border-bottom:3px solid #2e7d32;padding-bottom:14px}
.brand .logo{font-size:30px;font-weight:700;letter-spacing:2px;color:#2e7d32}
.brand .logo-ar{font-size:22px;font-weight:700;color:#2e7d32}
.brand .tagline{color:#5b6b5d;font-size:12.5px}
.title{text-align:end}
.title h1{margin:0;font-size:26px;color:#1d2a1f}
.title .number{font-size:16px;font-weight:700;margin-top:2px}
.badge{display:inline-block;margin-top:6px;padding:2px 12px;border-radius:12px;font-weight:700;font-size:13px;border:1px solid currentColor}
.st-paid{color:#1b5e20;background:#e8f5e9}
.st-pending{color:#8a5a00;background:#fff6e0}
.st-overdue{color:#b71c1c;background:#fdecea}
.st-canceled,.st-draft{color:#555;background:#f0f0f0}
.st-refunded{color:#0d47a1;background:#e8f0fd}
.parties{display:flex;justify-content:space-between;gap:24px;margin:18px 0}
.parties>div{flex:1}
h2{font-size:13px;text-transform:uppercase;letter-spacing:.5px;color:#5b6b5d;margin:0 0 6px}
.party .name{font-size:17px;font-weight:700}
.party .alt{color:#3d4b3f}
table{width:100%;border-collapse:collapse}
table.facts td{padding:2px 0;vertical-align:top}
table.facts td:first-child{color:#5b6b5d;padding-inline-end:12px;white-space:nowrap}
table.lines{margin-top:8px}
table.lines th{background:#2e7d32;color:#fff;font-weight:700;padding:7px 8px;text-align:start}
table.lines td{padding:7px 8px;border-bottom:1px solid #dfe5dd;vertical-align:top}
table.lines tr:nth-child(even) td{background:#f7f9f6}
table.lines th.n,table.lines td.n,td.n{text-align:end;white-space:nowrap}
.bottom{display:flex;justify-content:space-between;gap:24px;margin-top:14px}
.bottom .fx{flex:1}
table.totals{width:auto;min-width:78mm}
table.totals td{padding:4px 8px}
table.totals td.n{min-width:30mm}
table.totals tr.total td{border-top:2px solid #1d2a1f;font-weight:700;font-size:16px}
table.totals tr.due td{background:#f1f8e9;font-weight:700}
.fx p,.notes p{margin:2px 0}
.notes{margin-top:18px;padding:10px 12px;background:#f7f9f6;border-inline-start:3px solid #2e7d32}
footer{margin-top:22px;padding-top:8px;border-top:1px solid #dfe5dd;color:#5b6b5d;font-size:11.5px;text-align:center}
bdi.num,bdi.code{unicode-bidi:isolate;direction:ltr}
@page{size:A4;margin:12mm}
@media print{
  html,body{background:#fff}
  .sheet{width:auto;min-height:0;margin:0;padding:0;box-shadow:none}
  thead{display:table-header-group}
  tr,.bottom,.notes{break-inside:avoid}
}
"#;
