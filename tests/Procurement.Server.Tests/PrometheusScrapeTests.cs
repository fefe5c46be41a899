using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Google.Protobuf.WellKnownTypes;
using Procurement.Api.V1;
using Procurement.Server.Auth;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

/// <summary>
/// A real Prometheus scrapes a running server: every server metric that the Grafana dashboard and the
/// alert rules under deploy/observability use exists with data. Prometheus comes from Debian's
/// package, which .ci/run installs; where it is missing the test says so and skips.
/// </summary>
public sealed partial class PrometheusScrapeTests
{
    [SkippableFact]
    public async Task EveryMetricTheDashboardAndAlertsUse_IsScrapedWithData()
    {
        Skip.If(FindOnPath("prometheus") is null, "prometheus is not installed (Debian: apt-get install prometheus; .ci/run installs it)");
        var metricsPort = ServerHarness.FreePort();
        await using var server = await ServerHarness.StartAsync(extraArgs:
            [$"--Procurement:Telemetry:PrometheusPort={metricsPort}", "--Procurement:Telemetry:SampleInterval=00:00:01"]);
        await WorkloadAsync(server);

        var folder = Directory.CreateTempSubdirectory("procurement-prometheus-").FullName;
        var webPort = ServerHarness.FreePort();
        await File.WriteAllTextAsync(Path.Combine(folder, "prometheus.yml"), $"""
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: procurement
                static_configs:
                  - targets: ["127.0.0.1:{metricsPort}"]
            """);
        using var prometheus = Process.Start(new ProcessStartInfo("prometheus")
        {
            ArgumentList =
            {
                $"--config.file={Path.Combine(folder, "prometheus.yml")}", $"--storage.tsdb.path={Path.Combine(folder, "data")}",
                $"--web.listen-address=127.0.0.1:{webPort}",
            },
            RedirectStandardError = true, RedirectStandardOutput = true,
        })!;
        _ = prometheus.StandardError.ReadToEndAsync();
        _ = prometheus.StandardOutput.ReadToEndAsync();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{webPort}") };
            var wanted = MetricsUsedByTheDeployment();
            Assert.Contains("procurement_server_procurement_admission_decisions", wanted);
            var missing = wanted;
            var deadline = Stopwatch.StartNew();
            while (missing.Count > 0 && deadline.Elapsed < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(1000);
                var still = new List<string>();
                foreach (var name in missing)
                {
                    if (!await HasDataAsync(http, name))
                    {
                        still.Add(name);
                    }
                }

                missing = still;
            }

            if (missing.Count > 0)
            {
                var exposed = await http.GetStringAsync(new Uri($"http://127.0.0.1:{metricsPort}/metrics"));
                Assert.Fail("no data in Prometheus for: " + string.Join(", ", missing) + "\nthe server exposes:\n"
                    + string.Join("\n", exposed.Split('\n').Where(l => l.StartsWith("procurement", StringComparison.Ordinal)).Take(40)));
            }

            Assert.True(await HasDataAsync(http, "up", "{job=\"procurement\"} == 1"), "Prometheus does not see the server up");
        }
        finally
        {
            prometheus.Kill(entireProcessTree: true);
            await prometheus.WaitForExitAsync();
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Admissions, a queue admitted on release, a preemption, usage, a statement and an SLA report.</summary>
    private static async Task WorkloadAsync(ServerHarness server)
    {
        await Fixtures.CreatePoolsAsync(server, h100Capacity: 10, h200Capacity: 10);
        var guaranteed = await Fixtures.CreateActiveContractAsync(server, "lab-a", Fixtures.H100Terms(server.Clock.GetUtcNow(), 6, 0));
        var borrower = await Fixtures.CreateActiveContractAsync(server, "lab-b", Fixtures.H100Terms(server.Clock.GetUtcNow(), 0, 20));
        async Task<Allocation> Ask(Contract c, long units, bool wait = false) => (await server.OperatorAllocations.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = c.ContractId, PoolId = Fixtures.H100, Units = units, WaitIfUnavailable = wait,
        })).Allocation;

        await Ask(borrower, 8);
        var queued = await Ask(borrower, 4, wait: true);
        Assert.Equal(AllocationState.Pending, queued.State);
        var own = await Ask(guaranteed, 6); // preempts the borrower's 8; the queued 4 waits on
        server.Clock.Advance(TimeSpan.FromMinutes(1));
        await server.OperatorAllocations.ReleaseAllocationAsync(new ReleaseAllocationRequest { RequestId = Rpc.NewRequestId(), AllocationId = own.AllocationId });
        var admitted = (await server.OperatorAllocations.GetAllocationAsync(new GetAllocationRequest { AllocationId = queued.AllocationId })).Allocation;
        Assert.Equal(AllocationState.Active, admitted.State);
        server.Clock.Advance(TimeSpan.FromMinutes(1));

        var meter = server.Allocations(await server.CreateKeyAsync(Role.Meter));
        using (var call = meter.ReportUsage())
        {
            var start = admitted.AdmitTime;
            await call.RequestStream.WriteAsync(new ReportUsageRequest
            {
                Samples =
                {
                    new UsageSample
                    {
                        Source = "m", SampleId = "1", AllocationId = admitted.AllocationId, WindowStart = start,
                        WindowEnd = Timestamp.FromDateTimeOffset(start.ToDateTimeOffset().AddSeconds(1)), BusyGpuSeconds = 1,
                    },
                },
            });
            await call.RequestStream.CompleteAsync();
            Assert.Equal(1, (await call.ResponseAsync).Accepted);
        }

        var month = new BillingMonth { Year = server.Clock.GetUtcNow().Year, Month = server.Clock.GetUtcNow().Month };
        await server.OperatorContracts.GetStatementAsync(new GetStatementRequest { ContractId = guaranteed.ContractId, Month = month });
        await new SlaService.SlaServiceClient(server.Invoker(server.OperatorKey)).GetSlaReportAsync(new GetSlaReportRequest { ContractId = guaranteed.ContractId, Month = month });
    }

    /// <summary>Every server metric named in the dashboard's queries and the alert rules (client metrics come from the labs' services).</summary>
    private static List<string> MetricsUsedByTheDeployment()
    {
        var folder = Path.Combine(Repository.Root, "deploy", "observability");
        var text = File.ReadAllText(Path.Combine(folder, "alerts.yaml"));
        using (var dashboard = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "grafana-dashboard.json"))))
        {
            foreach (var panel in dashboard.RootElement.GetProperty("panels").EnumerateArray())
            {
                foreach (var target in panel.GetProperty("targets").EnumerateArray())
                {
                    text += "\n" + target.GetProperty("expr").GetString();
                }
            }
        }

        return MetricName().Matches(text).Select(m => m.Value).Where(n => !n.StartsWith("procurement_client_", StringComparison.Ordinal)).Distinct().Order().ToList();
    }

    private static async Task<bool> HasDataAsync(HttpClient http, string name, string selector = "")
    {
        using var reply = await http.GetAsync($"/api/v1/query?query={Uri.EscapeDataString($"count({name}{selector})")}");
        if (!reply.IsSuccessStatusCode)
        {
            return false;
        }

        var body = await reply.Content.ReadFromJsonAsync<JsonElement>();
        return body.GetProperty("data").GetProperty("result").GetArrayLength() > 0;
    }

    private static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);

    [GeneratedRegex(@"\bprocurement_[a-z0-9_]+")]
    private static partial Regex MetricName();
}
