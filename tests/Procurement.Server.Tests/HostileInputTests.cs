using System.Diagnostics;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Server.Auth;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

/// <summary>
/// Values a buggy or hostile client sends: each class is answered INVALID_ARGUMENT naming the field,
/// quickly, with trailers a client accepts, and never INTERNAL.
/// </summary>
public sealed class HostileInputTests : IAsyncLifetime
{
    private const int MaxTrailerBytes = 8 * 1024;
    private ServerHarness _server = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync();
        await Fixtures.CreatePoolsAsync(_server);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static Timestamp Ts(long seconds, int nanos = 0) => new() { Seconds = seconds, Nanos = nanos };

    /// <summary>Bad timestamps: before 1970, at or past 9999-01-01, nanos out of range or below a millisecond.</summary>
    public static TheoryData<long, int> BadTimestamps => new()
    {
        { -1, 0 },
        { -62_135_596_801, 0 },
        { 253_402_300_800, 0 },
        { long.MaxValue, 0 },
        { 1_700_000_000, 1_000_000_000 },
        { 1_700_000_000, -1_000_000 },
        { 1_700_000_000, 1_500 },
    };

    [Theory]
    [MemberData(nameof(BadTimestamps))]
    public async Task BadTimestamp_InEveryTimestampField_IsInvalidArgumentNamingIt(long seconds, int nanos)
    {
        var ops = _server.OperatorContracts;
        var sla = new SlaService.SlaServiceClient(_server.Invoker(_server.OperatorKey));
        var k = await Fixtures.CreateActiveContractAsync(_server, "lab-a", Fixtures.H100Terms(_server.Clock.GetUtcNow(), 10, 10));
        var bad = Ts(seconds, nanos);

        var terms = Fixtures.Terms(_server.Clock.GetUtcNow());
        terms.StartTime = bad;
        await Refused("terms.start_time", ops.CreateContractAsync(new CreateContractRequest { RequestId = Rpc.NewRequestId(), TenantId = "lab-b", DisplayName = "x", Terms = terms }));
        terms = Fixtures.Terms(_server.Clock.GetUtcNow());
        terms.EndTime = bad;
        await Refused("terms.end_time", ops.CreateContractAsync(new CreateContractRequest { RequestId = Rpc.NewRequestId(), TenantId = "lab-b", DisplayName = "x", Terms = terms }));
        await Refused("effective_time", ops.PublishIndexValueAsync(new PublishIndexValueRequest { RequestId = Rpc.NewRequestId(), IndexName = "IDX", Value = "1", EffectiveTime = bad }));
        await Refused("start_time", sla.RecordIncidentAsync(new RecordIncidentRequest { RequestId = Rpc.NewRequestId(), PoolId = Fixtures.H100, Kind = IncidentKind.Outage, StartTime = bad, AffectedUnits = 1 }));
        await Refused("start_time", sla.ListIncidentsAsync(new ListIncidentsRequest { StartTime = bad }));
        await Refused("end_time", _server.OperatorAllocations.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = k.ContractId, PoolId = Fixtures.H100, Units = 1, EndTime = bad,
        }));
    }

    /// <summary>Bad durations: mixed signs, nanos out of range, past 1,000 years, below a millisecond.</summary>
    public static TheoryData<long, int> BadDurations => new()
    {
        { 1, -1_000_000 },
        { -1, 1_000_000 },
        { 0, 1_000_000_000 },
        { long.MaxValue, 0 },
        { 315_576_000_000, 0 },
        { 3_600, 1 },
    };

    [Theory]
    [MemberData(nameof(BadDurations))]
    public async Task BadDuration_IsInvalidArgumentNamingIt(long seconds, int nanos)
    {
        var bad = new Duration { Seconds = seconds, Nanos = nanos };
        var k = await Fixtures.CreateActiveContractAsync(_server, "lab-a", Fixtures.H100Terms(_server.Clock.GetUtcNow(), 10, 10));
        await Refused("duration", _server.OperatorAllocations.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = k.ContractId, PoolId = Fixtures.H100, Units = 1, Duration = bad,
        }));

        var terms = Fixtures.Terms(_server.Clock.GetUtcNow());
        terms.Sla.MaintenanceNotice = bad;
        await Refused("terms.sla.maintenance_notice", _server.OperatorContracts.CreateContractAsync(new CreateContractRequest
        {
            RequestId = Rpc.NewRequestId(), TenantId = "lab-b", DisplayName = "x", Terms = terms,
        }));
    }

    [Theory]
    [InlineData("1\u0000")]
    [InlineData("1e3")]
    [InlineData("+1")]
    [InlineData("NaN")]
    public async Task MalformedDecimal_IsRefused_NotReadAsANumber(string text)
    {
        await Refused("value", _server.OperatorContracts.PublishIndexValueAsync(new PublishIndexValueRequest
        {
            RequestId = Rpc.NewRequestId(), IndexName = "IDX", Value = text, EffectiveTime = Timestamp.FromDateTimeOffset(_server.Clock.GetUtcNow()),
        }));
    }

    [Fact]
    public async Task HugeValues_AreRefusedWithABoundedError_Quickly()
    {
        var huge = await Refused("value", _server.OperatorContracts.PublishIndexValueAsync(new PublishIndexValueRequest
        {
            RequestId = Rpc.NewRequestId(), IndexName = "IDX", Value = new string('9', 1_000_000), EffectiveTime = Timestamp.FromDateTimeOffset(_server.Clock.GetUtcNow()),
        }));
        Assert.True(huge.Status.Detail.Length < 1_000, huge.Status.Detail);

        // Within the string limit but not a decimal: the value is echoed as a prefix and its length.
        var long4k = await Refused("value", _server.OperatorContracts.PublishIndexValueAsync(new PublishIndexValueRequest
        {
            RequestId = Rpc.NewRequestId(), IndexName = "IDX", Value = new string('9', 4_000) + "x", EffectiveTime = Timestamp.FromDateTimeOffset(_server.Clock.GetUtcNow()),
        }));
        Assert.Contains("(4,001 characters)", long4k.Status.Detail);

        await Refused("contract_id", _server.OperatorContracts.GetContractAsync(new GetContractRequest { ContractId = new string('x', 100_000) }));
        await Refused("contract_id", _server.OperatorContracts.GetContractAsync(new GetContractRequest { ContractId = "ctr_1\u0000" }));

        // A thousand entitlements to the same pool, each named a duplicate: the first are listed, the rest counted.
        var terms = Fixtures.Terms(_server.Clock.GetUtcNow());
        for (var i = 0; i < 1000; i++)
        {
            terms.Entitlements.Add(new PoolEntitlement { PoolId = Fixtures.H100, ReservedUnits = 1 });
        }

        var many = await Refused("terms.entitlements", _server.OperatorContracts.CreateContractAsync(new CreateContractRequest
        {
            RequestId = Rpc.NewRequestId(), TenantId = "lab-b", DisplayName = "x", Terms = terms,
        }));
        Assert.True(int.Parse(many.Metadata()["field_violations_omitted"], System.Globalization.CultureInfo.InvariantCulture) > 0);
    }

    [Fact]
    public async Task QuoteArithmeticThatOverflows_IsValueOutOfRange()
    {
        var k = await Fixtures.CreateActiveContractAsync(_server, "lab-a");
        foreach (var hours in new[] { "79228162514264337593543950335", "10000000000000000000000" })
        {
            var e = await Rpc.FailsWith(StatusCode.InvalidArgument, "VALUE_OUT_OF_RANGE", _server.OperatorContracts.QuoteContractAsync(new QuoteContractRequest
            {
                ContractId = k.ContractId, Month = new BillingMonth { Year = 2026, Month = 4 },
                Usage = { new ProjectedUsage { AcceleratorType = "H100-SXM-80GB", GpuHours = hours } },
            }));
            Assert.True(e.BadFields().Contains("usage"), e.Status.Detail);
        }

        await Refused("month", _server.OperatorContracts.QuoteContractAsync(new QuoteContractRequest
        {
            ContractId = k.ContractId, Month = new BillingMonth { Year = 9999, Month = 12 },
        }));
    }

    [Fact]
    public async Task UsageSample_WithASubMillisecondWindow_IsRejectedAlone_AndItsResendAlike()
    {
        var k = await Fixtures.CreateActiveContractAsync(_server, "lab-a", Fixtures.H100Terms(_server.Clock.GetUtcNow(), 10, 10));
        var a = (await _server.OperatorAllocations.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = k.ContractId, PoolId = Fixtures.H100, Units = 1,
        })).Allocation;
        _server.Clock.Advance(TimeSpan.FromMinutes(5));
        var meter = _server.Allocations(await _server.CreateKeyAsync(Role.Meter));
        var admitted = a.AdmitTime;
        var subMillisecond = new UsageSample
        {
            Source = "m", SampleId = "s1", AllocationId = a.AllocationId, WindowStart = admitted,
            WindowEnd = new Timestamp { Seconds = admitted.Seconds, Nanos = admitted.Nanos + 1_500 }, BusyGpuSeconds = 0,
        };
        var good = new UsageSample
        {
            Source = "m", SampleId = "s2", AllocationId = a.AllocationId, WindowStart = admitted,
            WindowEnd = Timestamp.FromDateTimeOffset(admitted.ToDateTimeOffset().AddSeconds(1)), BusyGpuSeconds = 1,
        };

        for (var attempt = 0; attempt < 2; attempt++)
        {
            using var call = meter.ReportUsage();
            await call.RequestStream.WriteAsync(new ReportUsageRequest { Samples = { subMillisecond, good } });
            await call.RequestStream.CompleteAsync();
            var reply = await call.ResponseAsync;
            Assert.Equal(1, reply.Rejected);
            Assert.Equal("INVALID_SAMPLE", reply.Rejections[0].Reason);
            Assert.Contains("window_end", reply.Rejections[0].Message);
            Assert.Equal((attempt == 0 ? 1 : 0, attempt == 0 ? 0 : 1), (reply.Accepted, reply.Duplicate));
        }
    }

    private static async Task<RpcException> Refused<T>(string field, AsyncUnaryCall<T> call)
    {
        var watch = Stopwatch.StartNew();
        var e = await Rpc.FailsWith(StatusCode.InvalidArgument, call);
        watch.Stop();
        Assert.True(e.BadFields().Any(f => f == field || f.StartsWith(field + "[", StringComparison.Ordinal) || f.StartsWith(field + ".", StringComparison.Ordinal)),
            $"expected {field} among {string.Join(", ", e.BadFields())}: {e.Status.Detail}");
        Assert.True(TrailerBytes(e) < MaxTrailerBytes, $"{TrailerBytes(e)} bytes of trailers");
        // Generous for a shared 2-core host: the point is "answered", not "fast".
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2), $"answered in {watch.Elapsed}");
        return e;
    }

    private static int TrailerBytes(RpcException e) =>
        e.Trailers.Sum(t => t.Key.Length + (t.IsBinary ? t.ValueBytes.Length * 4 / 3 : t.Value.Length)) + Uri.EscapeDataString(e.Status.Detail).Length;
}
