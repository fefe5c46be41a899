using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Server.Auth;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

/// <summary>Every RPC against every kind of caller: no key, a bad key, a revoked key, each role.</summary>
public sealed class AuthMatrixTests : IAsyncLifetime
{
    /// <summary>One call per RPC, with an empty (so invalid) request: authorization must come first.</summary>
    private static readonly Dictionary<string, Func<CallInvoker, Task>> Calls = new()
    {
        ["/procurement.v1.ContractService/CreateContract"] = i => new ContractService.ContractServiceClient(i).CreateContractAsync(new CreateContractRequest()).ResponseAsync,
        ["/procurement.v1.ContractService/GetContract"] = i => new ContractService.ContractServiceClient(i).GetContractAsync(new GetContractRequest()).ResponseAsync,
        ["/procurement.v1.ContractService/ListContracts"] = i => new ContractService.ContractServiceClient(i).ListContractsAsync(new ListContractsRequest()).ResponseAsync,
        ["/procurement.v1.ContractService/UpdateContract"] = i => new ContractService.ContractServiceClient(i).UpdateContractAsync(new UpdateContractRequest()).ResponseAsync,
        ["/procurement.v1.ContractService/ActivateContract"] = i => new ContractService.ContractServiceClient(i).ActivateContractAsync(new ActivateContractRequest()).ResponseAsync,
        ["/procurement.v1.ContractService/SuspendContract"] = i => new ContractService.ContractServiceClient(i).SuspendContractAsync(new SuspendContractRequest()).ResponseAsync,
        ["/procurement.v1.ContractService/ResumeContract"] = i => new ContractService.ContractServiceClient(i).ResumeContractAsync(new ResumeContractRequest()).ResponseAsync,
        ["/procurement.v1.ContractService/TerminateContract"] = i => new ContractService.ContractServiceClient(i).TerminateContractAsync(new TerminateContractRequest()).ResponseAsync,
        ["/procurement.v1.ContractService/AmendContract"] = i => new ContractService.ContractServiceClient(i).AmendContractAsync(new AmendContractRequest()).ResponseAsync,
        ["/procurement.v1.ContractService/ListContractVersions"] = i => new ContractService.ContractServiceClient(i).ListContractVersionsAsync(new ListContractVersionsRequest()).ResponseAsync,
        ["/procurement.v1.ContractService/ListAuditEvents"] = i => new ContractService.ContractServiceClient(i).ListAuditEventsAsync(new ListAuditEventsRequest()).ResponseAsync,
        ["/procurement.v1.ContractService/PublishIndexValue"] = i => new ContractService.ContractServiceClient(i).PublishIndexValueAsync(new PublishIndexValueRequest()).ResponseAsync,
        ["/procurement.v1.ContractService/ListIndexValues"] = i => new ContractService.ContractServiceClient(i).ListIndexValuesAsync(new ListIndexValuesRequest()).ResponseAsync,
        ["/procurement.v1.ContractService/GetStatement"] = i => new ContractService.ContractServiceClient(i).GetStatementAsync(new GetStatementRequest()).ResponseAsync,
        ["/procurement.v1.ContractService/QuoteContract"] = i => new ContractService.ContractServiceClient(i).QuoteContractAsync(new QuoteContractRequest()).ResponseAsync,
        ["/procurement.v1.SlaService/RecordIncident"] = i => new SlaService.SlaServiceClient(i).RecordIncidentAsync(new RecordIncidentRequest()).ResponseAsync,
        ["/procurement.v1.SlaService/ResolveIncident"] = i => new SlaService.SlaServiceClient(i).ResolveIncidentAsync(new ResolveIncidentRequest()).ResponseAsync,
        ["/procurement.v1.SlaService/ListIncidents"] = i => new SlaService.SlaServiceClient(i).ListIncidentsAsync(new ListIncidentsRequest()).ResponseAsync,
        ["/procurement.v1.SlaService/GetSlaReport"] = i => new SlaService.SlaServiceClient(i).GetSlaReportAsync(new GetSlaReportRequest()).ResponseAsync,
        ["/procurement.v1.AllocationService/CreatePool"] = i => new AllocationService.AllocationServiceClient(i).CreatePoolAsync(new CreatePoolRequest()).ResponseAsync,
        ["/procurement.v1.AllocationService/GetPool"] = i => new AllocationService.AllocationServiceClient(i).GetPoolAsync(new GetPoolRequest()).ResponseAsync,
        ["/procurement.v1.AllocationService/ListPools"] = i => new AllocationService.AllocationServiceClient(i).ListPoolsAsync(new ListPoolsRequest()).ResponseAsync,
        ["/procurement.v1.AllocationService/UpdatePoolCapacity"] = i => new AllocationService.AllocationServiceClient(i).UpdatePoolCapacityAsync(new UpdatePoolCapacityRequest()).ResponseAsync,
        ["/procurement.v1.AllocationService/GetPoolStatus"] = i => new AllocationService.AllocationServiceClient(i).GetPoolStatusAsync(new GetPoolStatusRequest()).ResponseAsync,
        ["/procurement.v1.AllocationService/RequestAllocation"] = i => new AllocationService.AllocationServiceClient(i).RequestAllocationAsync(new RequestAllocationRequest()).ResponseAsync,
        ["/procurement.v1.AllocationService/GetAllocation"] = i => new AllocationService.AllocationServiceClient(i).GetAllocationAsync(new GetAllocationRequest()).ResponseAsync,
        ["/procurement.v1.AllocationService/ListAllocations"] = i => new AllocationService.AllocationServiceClient(i).ListAllocationsAsync(new ListAllocationsRequest()).ResponseAsync,
        ["/procurement.v1.AllocationService/ReleaseAllocation"] = i => new AllocationService.AllocationServiceClient(i).ReleaseAllocationAsync(new ReleaseAllocationRequest()).ResponseAsync,
        ["/procurement.v1.AllocationService/BookCapacityBlock"] = i => new AllocationService.AllocationServiceClient(i).BookCapacityBlockAsync(new BookCapacityBlockRequest()).ResponseAsync,
        ["/procurement.v1.AllocationService/GetCapacityBlock"] = i => new AllocationService.AllocationServiceClient(i).GetCapacityBlockAsync(new GetCapacityBlockRequest()).ResponseAsync,
        ["/procurement.v1.AllocationService/ListCapacityBlocks"] = i => new AllocationService.AllocationServiceClient(i).ListCapacityBlocksAsync(new ListCapacityBlocksRequest()).ResponseAsync,
        ["/procurement.v1.AllocationService/CancelCapacityBlock"] = i => new AllocationService.AllocationServiceClient(i).CancelCapacityBlockAsync(new CancelCapacityBlockRequest()).ResponseAsync,
        ["/procurement.v1.AllocationService/FindCapacityBlockOfferings"] = i => new AllocationService.AllocationServiceClient(i).FindCapacityBlockOfferingsAsync(new FindCapacityBlockOfferingsRequest()).ResponseAsync,
        ["/procurement.v1.AllocationService/WatchAllocations"] = async i =>
        {
            // Allowed callers get a live stream: reading its (empty) history and stopping is success.
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
            using var call = new AllocationService.AllocationServiceClient(i).WatchAllocations(new WatchAllocationsRequest(), cancellationToken: cts.Token);
            try
            {
                await call.ResponseStream.MoveNext(cts.Token);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
            {
            }
        },
        ["/procurement.v1.AllocationService/ReportUsage"] = async i =>
        {
            using var call = new AllocationService.AllocationServiceClient(i).ReportUsage();
            try
            {
                await call.RequestStream.CompleteAsync();
            }
            catch (RpcException)
            {
                // The server may have refused the call before the client finished writing.
            }

            await call.ResponseAsync;
        },
    };

    private ServerHarness _server = null!;
    private Dictionary<Role, string> _keys = null!;

    public static TheoryData<string> Methods => new(Calls.Keys);

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync();
        _keys = new Dictionary<Role, string>
        {
            [Role.Operator] = _server.OperatorKey,
            [Role.Customer] = await _server.CreateKeyAsync(Role.Customer, "lab-a"),
            [Role.Meter] = await _server.CreateKeyAsync(Role.Meter),
        };
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public void Matrix_CoversEveryRpcOfEveryService()
    {
        var rpcs = new[] { ContractService.Descriptor, AllocationService.Descriptor, SlaService.Descriptor }
            .SelectMany(s => s.Methods.Select(m => $"/{s.FullName}/{m.Name}"))
            .Order().ToList();
        Assert.Equal(rpcs, Calls.Keys.Order());
        Assert.Equal(rpcs, MethodPolicies.Allowed.Keys.Order());
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task NoKey_IsUnauthenticated(string method)
    {
        var e = await Rpc.FailsWith(StatusCode.Unauthenticated, () => Calls[method](_server.Invoker(null)));
        Assert.Equal("API_KEY_MISSING", e.Reason());
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task UnknownKey_IsUnauthenticated(string method)
    {
        var e = await Rpc.FailsWith(StatusCode.Unauthenticated, () => Calls[method](_server.Invoker("pk_not-a-real-key")));
        Assert.Equal("API_KEY_INVALID", e.Reason());
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task RevokedKey_IsUnauthenticated(string method)
    {
        var key = await _server.CreateKeyAsync(Role.Operator);
        await _server.RevokeKeyAsync(key);
        var e = await Rpc.FailsWith(StatusCode.Unauthenticated, () => Calls[method](_server.Invoker(key)));
        Assert.Equal("API_KEY_INVALID", e.Reason());
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task EachRole_IsAllowedOrDeniedByThePolicy(string method)
    {
        foreach (var (role, key) in _keys)
        {
            var allowed = MethodPolicies.Allowed[method].Contains(role);
            try
            {
                await Calls[method](_server.Invoker(key));
                Assert.True(allowed, $"{role} should not be able to call {method}");
            }
            catch (RpcException e)
            {
                if (allowed)
                {
                    Assert.NotEqual(StatusCode.PermissionDenied, e.StatusCode);
                    Assert.NotEqual(StatusCode.Unauthenticated, e.StatusCode);
                }
                else
                {
                    // Denied before the (invalid) request is even validated.
                    Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
                    Assert.Equal("ROLE_NOT_ALLOWED", e.Reason());
                }
            }
        }
    }

    [Fact]
    public async Task MalformedAuthorizationHeader_IsUnauthenticated()
    {
        var invoker = _server.Channel.CreateCallInvoker();
        var client = new AllocationService.AllocationServiceClient(invoker);
        var e = await Rpc.FailsWith(StatusCode.Unauthenticated, client.ListPoolsAsync(new ListPoolsRequest(), new Metadata { { "authorization", "Basic abc" } }));
        Assert.Equal("API_KEY_INVALID", e.Reason());
    }
}
