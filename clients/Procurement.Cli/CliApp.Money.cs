using Procurement.Api.V1;

namespace Procurement.Cli;

public static partial class CliApp
{
    private static async Task<int> IncidentsRecord(CommandContext c)
    {
        var a = c.Args;
        var kind = a.Required("kind");
        var request = new RecordIncidentRequest
        {
            PoolId = a.Required("pool"),
            Kind = System.Enum.TryParse<IncidentKind>(kind, ignoreCase: true, out var k) && k != IncidentKind.Unspecified
                ? k : throw new UsageException($"--kind must be OUTAGE, DEGRADED or MAINTENANCE, not '{kind}'"),
            StartTime = Ts(ParseTime(a.Required("start"), "start")),
            AffectedUnits = a.Long("units"),
        };
        if (a.Get("end") is { } end)
        {
            request.EndTime = Ts(ParseTime(end, "end"));
        }

        if (a.Get("announced") is { } announced)
        {
            request.AnnounceTime = Ts(ParseTime(announced, "announced"));
        }

        ShowIncidents(c, [await c.Client.Sla.RecordIncidentAsync(request, c.CancellationToken)]);
        return 0;
    }

    private static async Task<int> IncidentsResolve(CommandContext c)
    {
        var request = new ResolveIncidentRequest { IncidentId = c.Args.Positional1("INCIDENT_ID"), EndTime = Ts(ParseTime(c.Args.Required("end"), "end")) };
        ShowIncidents(c, [await c.Client.Sla.ResolveIncidentAsync(request, c.CancellationToken)]);
        return 0;
    }

    private static async Task<int> IncidentsList(CommandContext c)
    {
        var request = new ListIncidentsRequest { PoolId = c.Args.Get("pool") ?? "", PageSize = 1000 };
        if (c.Args.Get("from") is { } from)
        {
            request.StartTime = Ts(ParseTime(from, "from"));
        }

        if (c.Args.Get("to") is { } to)
        {
            request.EndTime = Ts(ParseTime(to, "to"));
        }

        var response = await c.Client.Sla.ListIncidentsAsync(request, c.CancellationToken);
        if (c.Out.Json)
        {
            c.Out.Message(response);
            return 0;
        }

        ShowIncidents(c, response.Incidents);
        return 0;
    }

    private static void ShowIncidents(CommandContext c, IEnumerable<Incident> incidents)
    {
        var list = incidents.ToList();
        if (c.Out.Json && list.Count == 1)
        {
            c.Out.Message(list[0]);
            return;
        }

        c.Out.Table(["INCIDENT", "POOL", "KIND", "START", "END", "UNITS", "ANNOUNCED"],
            list.Select(i => (IReadOnlyList<string>)[i.IncidentId, i.PoolId, Output.Enum(i.Kind), Output.Time(i.StartTime),
                i.EndTime is null ? "open" : Output.Time(i.EndTime), Units(i.AffectedUnits), Output.Time(i.AnnounceTime)]));
    }

    private static async Task<int> SlaReportCommand(CommandContext c)
    {
        var id = c.Args.Positional1("CONTRACT_ID");
        var month = ParseMonth(c.Args.Required("month"));
        var r = await c.Client.Sla.GetReportAsync(id, month.Year, month.Month, c.CancellationToken);
        if (c.Out.Json)
        {
            c.Out.Message(r);
            return 0;
        }

        c.Out.Line($"SLA report {r.ContractId}, {r.Month.Year:D4}-{r.Month.Month:D2}{(r.Provisional ? " (provisional, up to " + Output.Time(r.PeriodEnd) + ")" : "")}");
        c.Out.Line();
        c.Out.Fields(("uptime", $"{Round(r.UptimePercent, 4)}%  (target {r.TargetPercent}%: {(r.TargetMet ? "met" : "missed")})"),
            ("reserved", $"{Round(r.ReservedGpuMinutes, 2)} GPU-minutes"), ("downtime", $"{Round(r.DowntimeGpuMinutes, 2)} GPU-minutes"),
            ("error budget", $"{Round(r.ErrorBudgetMinutes, 2)} total, {Round(r.ErrorBudgetUsedMinutes, 2)} used, {Round(r.ErrorBudgetLeftMinutes, 2)} left"),
            ("credit", r.CreditBelowPercent.Length == 0 ? "none" : $"{r.CreditPercent}% (uptime below {r.CreditBelowPercent}%)"));
        c.Out.Line();
        c.Out.Table(["INCIDENT", "POOL", "KIND", "START", "END", "UNITS", "DOWNTIME GPU-MIN", "WHY"],
            r.Incidents.Select(i => (IReadOnlyList<string>)[i.Incident.IncidentId, i.Incident.PoolId, Output.Enum(i.Incident.Kind), Output.Time(i.Incident.StartTime),
                i.Incident.EndTime is null ? "open" : Output.Time(i.Incident.EndTime), Units(i.Incident.AffectedUnits), Round(i.DowntimeGpuMinutes, 2), i.Explanation]));
        return 0;
    }

    private static async Task<int> StatementsGet(CommandContext c)
    {
        var id = c.Args.Positional1("CONTRACT_ID");
        var month = ParseMonth(c.Args.Required("month"));
        var s = await c.Client.Contracts.GetStatementAsync(id, month.Year, month.Month, c.CancellationToken);
        if (c.Out.Json)
        {
            c.Out.Message(s);
            return 0;
        }

        PrintBill(c, s, $"Statement {s.ContractId} ({s.TenantId}), {s.Month.Year:D4}-{s.Month.Month:D2}" +
            (s.Provisional ? $" — PROVISIONAL, up to {Output.Time(s.PeriodEnd)}" : ""));
        return 0;
    }

    private static async Task<int> Quote(CommandContext c)
    {
        var a = c.Args;
        var request = new QuoteContractRequest
        {
            ContractId = a.Get("contract") ?? "",
            Month = ParseMonth(a.Required("month")),
            ReservationUtilization = a.Get("reservation-utilization") ?? "",
            PoolUtilization = a.Get("pool-utilization") ?? "",
            IndexValue = a.Get("index-value") ?? "",
            UptimePercent = a.Get("uptime") ?? "",
        };
        if (a.Get("terms") is { } terms)
        {
            request.Terms = TermsFile.Load(terms);
        }

        if (request.ContractId.Length == 0 && request.Terms is null)
        {
            throw new UsageException("give --contract or --terms");
        }

        foreach (var usage in a.All("usage"))
        {
            var eq = usage.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new UsageException($"--usage must be TYPE=GPU_HOURS, not '{usage}'");
            }

            request.Usage.Add(new ProjectedUsage { AcceleratorType = usage[..eq], GpuHours = usage[(eq + 1)..] });
        }

        foreach (var block in a.All("block"))
        {
            // TYPE=UNITSxHOURS, e.g. H100-SXM-80GB=10000x504.
            var eq = block.IndexOf('=', StringComparison.Ordinal);
            var x = block.IndexOf('x', eq + 1);
            if (eq <= 0 || x <= eq + 1 || !long.TryParse(block[(eq + 1)..x], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var units))
            {
                throw new UsageException($"--block must be TYPE=UNITSxHOURS, e.g. H100-SXM-80GB=10000x504, not '{block}'");
            }

            request.Blocks.Add(new ProjectedBlock { AcceleratorType = block[..eq], Units = units, Hours = block[(x + 1)..] });
        }

        var s = await c.Client.Contracts.QuoteAsync(request, c.CancellationToken);
        if (c.Out.Json)
        {
            c.Out.Message(s);
            return 0;
        }

        PrintBill(c, s, $"Quote {(s.ContractId.Length > 0 ? s.ContractId : "(inline terms)")}, {s.Month.Year:D4}-{s.Month.Month:D2}");
        return 0;
    }

    /// <summary>A statement as a bill: each line with what it was computed from, then the total.</summary>
    private static void PrintBill(CommandContext c, Statement s, string title)
    {
        var o = c.Out;
        o.Line(title);
        o.Line(new string('=', title.Length));
        o.Line($"terms version {s.TermsVersion}; index: {(s.Index.Value.Length > 0 ? $"{s.Index.IndexName} {s.Index.Value} → factor {s.Index.Factor} ({s.Index.Note})" : s.Index.Note)}");
        o.Line();
        var width = s.Lines.Max(l => l.Description.Length);
        foreach (var line in s.Lines)
        {
            o.Line($"  {line.Description.PadRight(width)}  {Output.Money(line.Amount),24}");
            switch (line.DetailCase)
            {
                case StatementLine.DetailOneofCase.Usage:
                    foreach (var t in line.Usage.Tiers)
                    {
                        o.Line($"      tier {t.TierIndex} ({(t.UpToGpuHours.Length > 0 ? "≤ " + t.UpToGpuHours : "beyond")}): {Round(t.GpuHours, 4)} GPU-h × {Round(t.UnitPrice, 6)} = {Round(t.Amount, 4)}");
                    }

                    break;
                case StatementLine.DetailOneofCase.Adjustment when line.Adjustment.Bands.Count > 0:
                    foreach (var b in line.Adjustment.Bands)
                    {
                        o.Line($"      {Output.Enum(b.Metric)} {Round(b.MetricValue, 6)} in [{b.Min}, {(b.Max.Length > 0 ? b.Max : "∞")}) × {b.Multiplier}");
                    }

                    break;
                case StatementLine.DetailOneofCase.Blocks:
                    foreach (var b in line.Blocks.Blocks)
                    {
                        o.Line($"      {(b.BlockId.Length > 0 ? $"{b.BlockId} {b.PoolId}" : "projected")}: {Round(b.GpuHours, 4)} GPU-h × {b.UnitPrice} = {Output.Money(b.Amount)}{(b.CancellationCharge ? " (cancelled inside its notice)" : "")}");
                    }

                    break;
                case StatementLine.DetailOneofCase.TrueUp:
                    o.Line($"      {Output.Money(line.TrueUp.MonthlyCommitment)} × {Round(line.TrueUp.TermFraction, 6)} of the month − adjusted usage {line.TrueUp.AdjustedUsage}");
                    break;
                case StatementLine.DetailOneofCase.Credit:
                    o.Line($"      {line.Credit.CreditPercent}% (cap {line.Credit.CapPercent}%) of {line.Credit.Charges}; uptime {Round(line.Credit.UptimePercent, 4)}%");
                    break;
            }
        }

        o.Line($"  {new string('-', width + 26)}");
        o.Line($"  {"Total".PadRight(width)}  {Output.Money(s.Total),24}");
        if (s.Metrics is { } m && (m.ReservationUtilization.Length > 0 || m.PoolUtilization.Length > 0))
        {
            o.Line();
            o.Line($"reservation utilization {Or(m.ReservationUtilization)}, pool utilization {Or(m.PoolUtilization)}, busy fraction {Or(m.BusyFraction)}");
        }
    }

    private static string Or(string s) => s.Length == 0 ? "n/a" : Round(s, 4);

    private static string Round(string value, int digits) =>
        decimal.TryParse(value, System.Globalization.NumberStyles.Number, System.Globalization.CultureInfo.InvariantCulture, out var d)
            ? Math.Round(d, digits).ToString(System.Globalization.CultureInfo.InvariantCulture) : value;

    private static async Task<int> IndexPublish(CommandContext c)
    {
        var request = new PublishIndexValueRequest
        {
            IndexName = c.Args.Required("name"), Value = c.Args.Required("value"), EffectiveTime = Ts(ParseTime(c.Args.Required("effective"), "effective")),
        };
        var v = await c.Client.Contracts.PublishIndexValueAsync(request, c.CancellationToken);
        if (c.Out.Json)
        {
            c.Out.Message(v);
            return 0;
        }

        c.Out.Fields(("index", v.IndexName), ("value", v.Value), ("effective", Output.Time(v.EffectiveTime)), ("published", Output.Time(v.PublishTime)));
        return 0;
    }

    private static async Task<int> IndexList(CommandContext c)
    {
        var name = c.Args.Required("name");
        var response = await c.Client.Contracts.ListIndexValuesAsync(new ListIndexValuesRequest { IndexName = name, PageSize = 1000 }, c.CancellationToken);
        if (c.Out.Json)
        {
            c.Out.Message(response);
            return 0;
        }

        c.Out.Table(["EFFECTIVE", "VALUE", "PUBLISHED"], response.IndexValues.Select(v => (IReadOnlyList<string>)[Output.Time(v.EffectiveTime), v.Value, Output.Time(v.PublishTime)]));
        return 0;
    }

    private static async Task<int> AuditList(CommandContext c)
    {
        var request = new ListAuditEventsRequest
        {
            ResourceType = c.Args.Get("resource-type") ?? "", ResourceId = c.Args.Get("resource-id") ?? "", PageSize = (int)c.Args.Long("page-size", 1000),
        };
        var response = await c.Client.Contracts.ListAuditEventsAsync(request, c.CancellationToken);
        if (c.Out.Json)
        {
            c.Out.Message(response);
            return 0;
        }

        c.Out.Table(["SEQ", "TIME", "KEY", "ROLE", "TENANT", "METHOD", "REQUEST", "RESOURCE"],
            response.Events.Select(e => (IReadOnlyList<string>)[e.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture), Output.Time(e.Time), e.KeyId,
                Output.Enum(e.Role), e.TenantId, e.Method[(e.Method.LastIndexOf('/') + 1)..], e.RequestId, $"{e.ResourceType}/{e.ResourceId}"]));
        return 0;
    }
}
