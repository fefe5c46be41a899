using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using Procurement.Domain.Common;
using Procurement.Domain.Contracts;
using Procurement.Server.Application;
using Procurement.Server.Services;
using Procurement.Storage;
using Procurement.Storage.Repositories;

namespace Procurement.Server.Telemetry;

/// <summary>
/// Samples what is dear to compute on every scrape: each pool's units (active, reserved, free,
/// pending) and queue length, and each ACTIVE contract's SLA error budget left this month. Read from
/// storage every <see cref="TelemetryOptions.SampleInterval"/> (one pool-status read per pool and one
/// SLA computation per contract); the gauges report the last sample.
/// </summary>
public sealed partial class TelemetrySampler : BackgroundService
{
    private readonly IProcurementStore _store;
    private readonly TimeProvider _time;
    private readonly TelemetryOptions _options;
    private readonly ILogger<TelemetrySampler> _logger;
    private readonly ProcurementMetrics _metrics;
    private volatile Sample _last = new([], []);

    public TelemetrySampler(IProcurementStore store, TimeProvider time, IOptions<TelemetryOptions> options, ProcurementMetrics metrics, ILogger<TelemetrySampler> logger)
    {
        (_store, _time, _options, _logger, _metrics) = (store, time, options.Value, logger, metrics);
        metrics.Meter.CreateObservableGauge("procurement.pool.units", () => _last.Pools.SelectMany(p => new[]
        {
            new Measurement<long>(p.Active, new("pool", p.Pool), new("state", "active")),
            new Measurement<long>(p.Reserved, new("pool", p.Pool), new("state", "reserved")),
            new Measurement<long>(p.Free, new("pool", p.Pool), new("state", "free")),
            new Measurement<long>(p.Pending, new("pool", p.Pool), new("state", "pending")),
            new Measurement<long>(p.Capacity, new("pool", p.Pool), new("state", "capacity")),
        }), "{unit}", "Units of each pool by state, sampled.");
        metrics.Meter.CreateObservableGauge("procurement.queue.length", () => _last.Pools.Select(p => new Measurement<long>(p.Queued, new KeyValuePair<string, object?>("pool", p.Pool))),
            "{request}", "PENDING requests of each pool, sampled.");
        metrics.Meter.CreateObservableGauge("procurement.sla.error_budget.remaining", () => _last.Budgets.Select(b => new Measurement<double>(b.LeftMinutes,
            new("contract", b.Contract), new("tenant", b.Tenant))), "min", "SLA error budget left this month per ACTIVE contract, in reserved GPU-minutes, sampled.");
        metrics.Meter.CreateObservableGauge("procurement.sla.error_budget.total", () => _last.Budgets.Select(b => new Measurement<double>(b.TotalMinutes,
            new("contract", b.Contract), new("tenant", b.Tenant))), "min", "SLA error budget of the month per ACTIVE contract, in reserved GPU-minutes, sampled.");
    }

    private sealed record PoolSample(string Pool, long Capacity, long Active, long Reserved, long Free, long Pending, long Queued);

    private sealed record BudgetSample(string Contract, string Tenant, double TotalMinutes, double LeftMinutes);

    private sealed record Sample(IReadOnlyList<PoolSample> Pools, IReadOnlyList<BudgetSample> Budgets);

    /// <summary>Takes one sample now (the background loop calls it; tests may too).</summary>
    public async Task SampleOnceAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var sample = await _store.ReadAsync(async s =>
        {
            var pools = new List<PoolSample>();
            var after = "";
            IReadOnlyList<Domain.Pools.Pool> page;
            do
            {
                page = await s.Pools.ListAsync(after, 500);
                foreach (var pool in page)
                {
                    var (status, _) = await AllocationGrpcService.ReadPoolStatusAsync(s, pool.Id, now);
                    var queued = status.PendingUnits == 0 ? 0 : (await s.Allocations.InPoolAsync(pool.Id, Domain.Allocations.AllocationState.Pending)).Count;
                    pools.Add(new PoolSample(pool.Id, pool.CapacityUnits, status.ActiveUnits, status.ReservedUnits, status.FreeUnits, status.PendingUnits, queued));
                    after = pool.Id;
                }
            }
            while (page.Count == 500);

            var budgets = new List<BudgetSample>();
            long afterSeq = 0;
            IReadOnlyList<(long Seq, Contract Contract)> contracts;
            do
            {
                contracts = await s.Contracts.ListAsync(new ContractFilter(null, ContractState.Active), now, afterSeq, 500);
                foreach (var (seq, contract) in contracts)
                {
                    afterSeq = seq;
                    var sla = await Billing.SlaAsync(s, Billing.Period(contract, BillingMonth.Of(now), now));
                    budgets.Add(new BudgetSample(contract.Id, contract.TenantId, (double)sla.ErrorBudgetMinutes, (double)sla.ErrorBudgetLeftMinutes));
                }
            }
            while (contracts.Count == 500);

            return new Sample(pools, budgets);
        }, cancellationToken);
        _last = sample;
        // Keeps the zero series alive where an exporter expires series that stop changing.
        _metrics.InitializeSeries();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Sampling is paced by the wall clock: it is an operational cadence, not business time.
        using var timer = new PeriodicTimer(_options.SampleInterval, TimeProvider.System);
        do
        {
            try
            {
                await SampleOnceAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                Log.SampleFailed(_logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3401, Level = LogLevel.Warning, Message = "Telemetry sample failed; the gauges keep the last sample")]
        public static partial void SampleFailed(ILogger logger, Exception exception);
    }
}
