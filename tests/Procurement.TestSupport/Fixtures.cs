using Google.Protobuf.WellKnownTypes;
using Procurement.Api.V1;

namespace Procurement.TestSupport;

/// <summary>Pools and valid API terms to build scenarios from.</summary>
public static class Fixtures
{
    public const string H100 = "h100";
    public const string H200 = "h200";

    public static async Task CreatePoolsAsync(ServerHarness server, long h100Capacity = 1000, long h200Capacity = 500)
    {
        await server.OperatorAllocations.CreatePoolAsync(new CreatePoolRequest
        {
            RequestId = Rpc.NewRequestId(), PoolId = H100, DisplayName = "H100 pool", Region = "us-east-1",
            AcceleratorType = "H100-SXM-80GB", CapacityUnits = h100Capacity,
        });
        await server.OperatorAllocations.CreatePoolAsync(new CreatePoolRequest
        {
            RequestId = Rpc.NewRequestId(), PoolId = H200, DisplayName = "H200 pool", Region = "us-east-1",
            AcceleratorType = "H200-SXM-141GB", CapacityUnits = h200Capacity,
        });
    }

    public static Money Usd(long micros) => new() { CurrencyCode = "USD", AmountMicros = micros };

    /// <summary>Terms from the start of the clock's month, 36 months, reserving in both pools.</summary>
    public static ContractTerms Terms(DateTimeOffset now, long h100Reserved = 600, long h200Reserved = 200)
    {
        var start = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero);
        var terms = new ContractTerms
        {
            StartTime = Timestamp.FromDateTimeOffset(start),
            EndTime = Timestamp.FromDateTimeOffset(start.AddMonths(36)),
            CurrencyCode = "USD",
            MonthlyCommitment = Usd(1_250_000_000_000_000),
            PriorityAccess = new PriorityAccess { Priority = 10, PreemptLowerPriorityBurst = true },
            IndexLinkage = new IndexLinkage { IndexName = "GPU-INDEX", BaseValue = "2.40", PassThrough = "0.5", Floor = "0.90", Cap = "1.25" },
            Sla = new SlaTerms
            {
                AvailabilityTargetPercent = "99.9",
                CreditCapPercent = "30",
                MaintenanceNotice = Duration.FromTimeSpan(TimeSpan.FromDays(7)),
                CreditSchedule =
                {
                    new SlaCreditRow { BelowPercent = "99.99", CreditPercent = "10" },
                    new SlaCreditRow { BelowPercent = "99.0", CreditPercent = "30" },
                    new SlaCreditRow { BelowPercent = "95.0", CreditPercent = "100" },
                },
            },
            Entitlements =
            {
                new PoolEntitlement { PoolId = H100, ReservedUnits = h100Reserved, BurstLimitUnits = 100 },
                new PoolEntitlement { PoolId = H200, ReservedUnits = h200Reserved, BurstLimitUnits = 50 },
            },
            RateCard =
            {
                new RateCardEntry
                {
                    AcceleratorType = "H100-SXM-80GB", Mode = PricingMode.Graduated,
                    Tiers = { new PriceTier { UpToGpuHours = "100000", UnitPrice = Usd(2_250_000) }, new PriceTier { UnitPrice = Usd(2_000_000) } },
                },
                new RateCardEntry
                {
                    AcceleratorType = "H200-SXM-141GB", Mode = PricingMode.Volume,
                    Tiers = { new PriceTier { UnitPrice = Usd(3_500_000) } },
                },
            },
            UtilizationBands =
            {
                new UtilizationBand { Metric = UtilizationMetric.ReservationUtilization, Min = "0", Max = "0.5", Multiplier = "1.05" },
                new UtilizationBand { Metric = UtilizationMetric.PoolUtilization, Min = "0.95", Multiplier = "1.02" },
            },
        };
        return terms;
    }

    /// <summary>Terms entitled to the H100 pool only, with the given reservation, burst limit and priority.</summary>
    public static ContractTerms H100Terms(DateTimeOffset now, long reserved, long burst, int priority = 0, bool preempt = false)
    {
        var terms = Terms(now);
        terms.Entitlements.Clear();
        terms.Entitlements.Add(new PoolEntitlement { PoolId = H100, ReservedUnits = reserved, BurstLimitUnits = burst });
        terms.PriorityAccess = new PriorityAccess { Priority = priority, PreemptLowerPriorityBurst = preempt };
        return terms;
    }

    public static async Task<Contract> CreateContractAsync(ServerHarness server, string tenantId = "lab-a", ContractTerms? terms = null)
    {
        var response = await server.OperatorContracts.CreateContractAsync(new CreateContractRequest
        {
            RequestId = Rpc.NewRequestId(), TenantId = tenantId, DisplayName = $"{tenantId} deal",
            Terms = terms ?? Terms(server.Clock.GetUtcNow()),
        });
        return response.Contract;
    }

    public static async Task<Contract> CreateActiveContractAsync(ServerHarness server, string tenantId = "lab-a", ContractTerms? terms = null)
    {
        var draft = await CreateContractAsync(server, tenantId, terms);
        return (await server.OperatorContracts.ActivateContractAsync(new ActivateContractRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = draft.ContractId,
        })).Contract;
    }
}
