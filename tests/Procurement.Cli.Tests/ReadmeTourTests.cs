using System.Text.Json;
using Procurement.Cli;
using Procurement.TestSupport;

namespace Procurement.Cli.Tests;

/// <summary>The README's CLI tour, command for command, against a server started with --demo.</summary>
public sealed class ReadmeTourTests
{
    [Fact]
    public async Task Tour_ShowsAPreemptionInTheDryRun_AnOutageInTheSlaReport_AndTheBill()
    {
        await using var server = await ServerHarness.StartAsync(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero), ["--demo"]);

        async Task<string> Run(params string[] args)
        {
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            var code = await CliApp.RunAsync(args, stdout, stderr,
                name => name switch { "PROCUREMENT_API_KEY" => server.OperatorKey, "PROCUREMENT_ENDPOINT" => server.Address, _ => null });
            Assert.True(code == 0, $"procurement {string.Join(' ', args)} exited {code}: {stderr}");
            return stdout.ToString();
        }

        var list = await Run("contracts", "list");
        Assert.Contains("frontier-lab", list);
        Assert.Contains("second-lab", list);
        var contracts = JsonDocument.Parse(await Run("contracts", "list", "--output", "json")).RootElement.GetProperty("contracts");
        var frontier = contracts[0].GetProperty("contract_id").GetString()!;
        var second = contracts[1].GetProperty("contract_id").GetString()!;

        Assert.Contains("ADMIT, burst", await Run("allocations", "request", "--contract", second, "--pool", "use1-h100", "--units", "30000"));
        var dry = await Run("allocations", "request", "--contract", frontier, "--pool", "use1-h100", "--units", "75000", "--dry-run");
        Assert.Contains("dry run: would ADMIT, within the reservation", dry);
        Assert.Contains("would preempt:", dry);
        Assert.Contains(second, dry);
        Assert.Contains("30,000", dry);
        Assert.Contains("preempted:", await Run("allocations", "request", "--contract", frontier, "--pool", "use1-h100", "--units", "75000"));
        Assert.Contains("active:   75,000", await Run("pools", "status", "use1-h100"));

        // The server runs on a fake clock here; the README's `--start now` is the CLI's wall clock.
        var incident = JsonDocument.Parse(await Run("incidents", "record", "--pool", "use1-h100", "--kind", "OUTAGE", "--units", "20000",
            "--start", "2026-11-26T12:00:00Z", "--output", "json")).RootElement.GetProperty("incident_id").GetString()!;
        server.Clock.Advance(TimeSpan.FromMinutes(30));
        var sla = await Run("sla", "report", frontier, "--month", "2026-11");
        Assert.Contains("provisional", sla);
        Assert.Contains("counted", sla);
        Assert.Contains("2026-11-26 12:30:00Z", await Run("incidents", "resolve", incident, "--end", "2026-11-26T12:30:00Z"));
        var bill = await Run("statements", "get", frontier, "--month", "2026-11");
        Assert.Contains("PROVISIONAL", bill);
        Assert.Contains("Commitment true-up", bill);
        Assert.Contains("Total", (await Run("quote", "--contract", frontier, "--month", "2026-12", "--usage", "H100-SXM-80GB=55000000", "--uptime", "99.95")));
        Assert.Contains("2026-11-26 13:00:00Z", await Run("blocks", "find", "--contract", frontier, "--pool", "use1-h100", "--units", "10000", "--hours", "48", "--count", "3"));
        Assert.Contains("BOOKED", await Run("blocks", "book", "--contract", frontier, "--pool", "use1-h100", "--units", "10000",
            "--start", "2026-11-27T00:00:00Z", "--end", "2026-11-29T00:00:00Z"));
        Assert.Contains("100,000 / 100,000 (blocks 10,000)", await Run("blocks", "calendar", "use1-h100", "--from", "2026-11-26T12:30:00Z", "--days", "7"));
        server.Clock.SetUtcNow(new DateTimeOffset(2026, 11, 27, 6, 0, 0, TimeSpan.Zero));
        Assert.Contains("Capacity blocks (1)", await Run("statements", "get", frontier, "--month", "2026-11"));
        Assert.Contains("RequestAllocation", await Run("audit", "list"));

        // `--start now-5m` is read from the CLI's own (wall) clock.
        var relative = JsonDocument.Parse(await Run("incidents", "record", "--pool", "use1-h200", "--kind", "DEGRADED", "--units", "1", "--start", "now-5m", "--output", "json"))
            .RootElement.GetProperty("start_time").GetString()!;
        var started = DateTimeOffset.Parse(relative, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(TimeProvider.System.GetUtcNow() - started, TimeSpan.FromMinutes(4), TimeSpan.FromMinutes(6));
    }
}
