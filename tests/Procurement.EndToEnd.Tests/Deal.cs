using Google.Protobuf.WellKnownTypes;
using Procurement.Api.V1;

namespace Procurement.EndToEnd.Tests;

/// <summary>The headline deal, with names unique to one run so an external target can be reused.</summary>
public sealed class Deal(string suffix)
{
    public string H100 { get; } = $"h100-{suffix}";

    public string H200 { get; } = $"h200-{suffix}";

    public string Index { get; } = $"IDX-{suffix}";

    public static Money Usd(long micros) => new() { CurrencyCode = "USD", AmountMicros = micros };

    public ContractTerms Headline(DateTimeOffset monthStart) => new()
    {
        StartTime = Timestamp.FromDateTimeOffset(monthStart),
        EndTime = Timestamp.FromDateTimeOffset(monthStart.AddMonths(36)),
        CurrencyCode = "USD",
        MonthlyCommitment = Usd(1_250_000_000_000_000),
        Entitlements =
        {
            new PoolEntitlement { PoolId = H100, ReservedUnits = 80_000, BurstLimitUnits = 10_000 },
            new PoolEntitlement { PoolId = H200, ReservedUnits = 30_000, BurstLimitUnits = 10_000 },
        },
        PriorityAccess = new PriorityAccess { Priority = 100, PreemptLowerPriorityBurst = true },
        RateCard =
        {
            new RateCardEntry
            {
                AcceleratorType = "H100-SXM-80GB", Mode = PricingMode.Graduated,
                Tiers = { new PriceTier { UpToGpuHours = "40000000", UnitPrice = Usd(2_250_000) }, new PriceTier { UnitPrice = Usd(2_000_000) } },
            },
            new RateCardEntry { AcceleratorType = "H200-SXM-141GB", Mode = PricingMode.Volume, Tiers = { new PriceTier { UnitPrice = Usd(3_500_000) } } },
        },
        IndexLinkage = new IndexLinkage { IndexName = Index, BaseValue = "2.40", PassThrough = "0.5", Floor = "0.90", Cap = "1.25" },
        UtilizationBands = { new UtilizationBand { Metric = UtilizationMetric.ReservationUtilization, Min = "0", Max = "0.5", Multiplier = "1.05" } },
        Sla = new SlaTerms
        {
            AvailabilityTargetPercent = "99.9", CreditCapPercent = "30", MaintenanceNotice = Duration.FromTimeSpan(TimeSpan.FromDays(7)),
            CreditSchedule =
            {
                new SlaCreditRow { BelowPercent = "99.99", CreditPercent = "10" },
                new SlaCreditRow { BelowPercent = "99.0", CreditPercent = "30" },
                new SlaCreditRow { BelowPercent = "95.0", CreditPercent = "100" },
            },
        },
    };

    public ContractTerms Second(DateTimeOffset monthStart)
    {
        var terms = Headline(monthStart);
        terms.Entitlements.Clear();
        terms.Entitlements.Add(new PoolEntitlement { PoolId = H100, ReservedUnits = 10_000, BurstLimitUnits = 20_000 });
        terms.PriorityAccess = new PriorityAccess { Priority = 10 };
        terms.MonthlyCommitment = Usd(20_000_000_000_000);
        terms.IndexLinkage = null;
        return terms;
    }

    public async Task CreatePoolsAsync(Procurement.Client.ProcurementClient client)
    {
        await client.Allocations.CreatePoolAsync(new CreatePoolRequest { PoolId = H100, DisplayName = "H100", Region = "us-east-1", AcceleratorType = "H100-SXM-80GB", CapacityUnits = 100_000 });
        await client.Allocations.CreatePoolAsync(new CreatePoolRequest { PoolId = H200, DisplayName = "H200", Region = "us-east-1", AcceleratorType = "H200-SXM-141GB", CapacityUnits = 50_000 });
    }

    public static async Task<Contract> ActiveContractAsync(Procurement.Client.ProcurementClient client, string tenant, ContractTerms terms)
    {
        var draft = await client.Contracts.CreateAsync(new CreateContractRequest { TenantId = tenant, DisplayName = tenant, Terms = terms });
        return await client.Contracts.ActivateAsync(new ActivateContractRequest { ContractId = draft.ContractId });
    }
}
