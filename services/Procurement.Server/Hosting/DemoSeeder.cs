using Procurement.Domain.Common;
using Procurement.Domain.Contracts;
using Procurement.Domain.Pools;
using Procurement.Server.Application;
using Procurement.Server.Auth;
using Procurement.Storage;
using Procurement.Storage.Repositories;

namespace Procurement.Server.Hosting;

/// <summary>
/// <c>--demo</c>: seeds an empty database with the headline deal — two pools of one cluster and an
/// ACTIVE 36-month, $1.25B-a-month contract for the tenant <c>frontier-lab</c> — and prints the keys.
/// </summary>
public sealed class DemoSeeder(IProcurementStore store, ApiKeys keys, TimeProvider time)
{
    public const string TenantId = "frontier-lab";
    public const string SecondTenantId = "second-lab";
    public const string H100Pool = "use1-h100";
    public const string H200Pool = "use1-h200";
    private const long Usd = 1_000_000; // micros per dollar

    public async Task<bool> SeedAsync(TextWriter output, CancellationToken cancellationToken)
    {
        var now = Mutations.TruncateToMilliseconds(time.GetUtcNow());
        var contractIds = await store.WriteAsync<(string Headline, string Second)?>(async s =>
        {
            if ((await s.Pools.ListAsync("", 1)).Count > 0 || (await s.Contracts.ListAsync(new ContractFilter(null, null), now, 0, 1)).Count > 0)
            {
                return null;
            }

            var pools = new[]
            {
                new Pool(H100Pool, "US-East-1 H100 cluster", "us-east-1", "H100-SXM-80GB", 100_000, 1, now, now),
                new Pool(H200Pool, "US-East-1 H200 cluster", "us-east-1", "H200-SXM-141GB", 50_000, 1, now, now),
            };
            foreach (var pool in pools)
            {
                await s.Pools.InsertAsync(pool);
                await Audit(s, now, "CreatePool", Pool.ResourceType, pool.Id);
            }

            var contract = await ContractOperations.CreateAsync(s, TenantId, "Frontier Lab compute agreement 2026-2029", HeadlineTerms(now), [], now);
            await Audit(s, now, "CreateContract", Contract.ResourceType, contract.Id);
            await ContractOperations.ActivateAsync(s, contract, now);
            await Audit(s, now, "ActivateContract", Contract.ResourceType, contract.Id);

            // A smaller, lower-priority lab whose burst the headline deal can take back.
            var second = await ContractOperations.CreateAsync(s, SecondTenantId, "Second Lab H100 agreement", SecondTerms(now), [], now);
            await Audit(s, now, "CreateContract", Contract.ResourceType, second.Id);
            await ContractOperations.ActivateAsync(s, second, now);
            await Audit(s, now, "ActivateContract", Contract.ResourceType, second.Id);
            return (contract.Id, second.Id);
        }, cancellationToken);

        if (contractIds is not { } ids)
        {
            await output.WriteLineAsync("--demo: the database is not empty; nothing was seeded.");
            return false;
        }

        var (operatorKey, operatorSecret) = await keys.CreateAsync(Role.Operator, null, "demo operator", cancellationToken);
        var (customerKey, customerSecret) = await keys.CreateAsync(Role.Customer, TenantId, "demo customer", cancellationToken);
        await output.WriteLineAsync($"""
            --demo: seeded pools {H100Pool} (100,000 H100) and {H200Pool} (50,000 H200),
                    ACTIVE contract {ids.Headline} for tenant {TenantId} ($1.25B/month committed, 36 months, priority 100),
                    and ACTIVE contract {ids.Second} for tenant {SecondTenantId} (10,000 H100 reserved + 20,000 burst, priority 10).
            operator key ({operatorKey.Id}): {operatorSecret}
            customer key ({customerKey.Id}, tenant {TenantId}): {customerSecret}
            """);
        return true;
    }

    /// <summary>The deal: 36 months from the start of this month, reservations in both pools, graduated and volume tiers.</summary>
    public static ContractTerms HeadlineTerms(DateTimeOffset now)
    {
        var start = BillingMonth.Of(now).Start;
        return new ContractTerms(
            StartTime: start,
            EndTime: start.AddMonths(36),
            CurrencyCode: "USD",
            MonthlyCommitmentMicros: 1_250_000_000 * Usd,
            Entitlements:
            [
                new PoolEntitlement(H100Pool, ReservedUnits: 80_000, BurstLimitUnits: 10_000) { MaxBlockUnits = 10_000 },
                new PoolEntitlement(H200Pool, ReservedUnits: 30_000, BurstLimitUnits: 10_000),
            ],
            PriorityAccess: new PriorityAccess(Priority: 100, PreemptLowerPriorityBurst: true),
            RateCard:
            [
                new RateCardEntry("H100-SXM-80GB", PricingMode.Graduated,
                [
                    new PriceTier(40_000_000m, 2_250_000),     // first 40M GPU-hours at $2.25
                    new PriceTier(60_000_000m, 2_000_000),     // next 20M at $2.00
                    new PriceTier(null, 1_800_000),            // beyond at $1.80
                ]),
                new RateCardEntry("H200-SXM-141GB", PricingMode.Volume,
                [
                    new PriceTier(20_000_000m, 3_500_000),     // whole month at $3.50 up to 20M GPU-hours
                    new PriceTier(null, 3_200_000),            // or $3.20 once the month passes 20M
                ]),
            ],
            IndexLinkage: new IndexLinkage("GPU-H100-SPOT-USE1", BaseValue: 2.40m, PassThrough: 0.5m, Floor: 0.90m, Cap: 1.25m),
            UtilizationBands:
            [
                new UtilizationBand(UtilizationMetric.ReservationUtilization, 0m, 0.5m, 1.05m),
                new UtilizationBand(UtilizationMetric.ReservationUtilization, 0.9m, null, 0.97m),
                new UtilizationBand(UtilizationMetric.PoolUtilization, 0.95m, null, 1.02m),
            ],
            Sla: new SlaTerms(99.9m, [new SlaCreditRow(99.99m, 10m), new SlaCreditRow(99.0m, 30m), new SlaCreditRow(95.0m, 100m)],
                CreditCapPercent: 30m, MaintenanceNotice: TimeSpan.FromDays(7)))
        {
            BlockRates = [new BlockRate("H100-SXM-80GB", 2_600_000)],     // capacity blocks at $2.60, index-adjusted when booked
            BlockCancellationNotice = TimeSpan.FromDays(14),
        };
    }

    /// <summary>12 months, 10,000 H100 reserved with 20,000 burst, $20M/month committed, priority 10.</summary>
    public static ContractTerms SecondTerms(DateTimeOffset now)
    {
        var headline = HeadlineTerms(now);
        return headline with
        {
            EndTime = headline.StartTime.AddMonths(12),
            MonthlyCommitmentMicros = 20_000_000 * Usd,
            Entitlements = [new PoolEntitlement(H100Pool, ReservedUnits: 10_000, BurstLimitUnits: 20_000)],
            PriorityAccess = new PriorityAccess(Priority: 10, PreemptLowerPriorityBurst: false),
            RateCard = [new RateCardEntry("H100-SXM-80GB", PricingMode.Graduated, [new PriceTier(null, 2_400_000)])],
            IndexLinkage = null,
            UtilizationBands = [],
        };
    }

    private static Task Audit(IStoreSession s, DateTimeOffset now, string method, string type, string id) =>
        s.Audit.AppendAsync(new AuditEvent(0, now, "system", "operator", null, $"demo-seed/{method}", "demo-seed", type, id));
}
