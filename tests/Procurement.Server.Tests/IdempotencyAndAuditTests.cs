using Microsoft.Extensions.DependencyInjection;
using Google.Protobuf;
using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Server.Auth;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

public sealed class IdempotencyAndAuditTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync();
        await Fixtures.CreatePoolsAsync(_server);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private ContractService.ContractServiceClient Ops => _server.OperatorContracts;

    private CreateContractRequest NewCreate() => new()
    {
        RequestId = Rpc.NewRequestId(), TenantId = "lab-a", DisplayName = "deal", Terms = Fixtures.Terms(_server.Clock.GetUtcNow()),
    };

    private async Task<int> ContractCount() => (await Ops.ListContractsAsync(new ListContractsRequest { PageSize = 1000 })).Contracts.Count;

    [Fact]
    public async Task Replay_SameRequestId_ReturnsTheFirstResponseAndChangesNothing()
    {
        var request = NewCreate();
        var first = await Ops.CreateContractAsync(request);
        _server.Clock.Advance(TimeSpan.FromMinutes(5));
        var second = await Ops.CreateContractAsync(request);

        Assert.Equal(first.ToByteArray(), second.ToByteArray());
        Assert.Equal(1, await ContractCount());
    }

    [Fact]
    public async Task Replay_OfAStateChange_DoesNotApplyItTwice()
    {
        var c = await Fixtures.CreateActiveContractAsync(_server);
        var suspend = new SuspendContractRequest { RequestId = Rpc.NewRequestId(), ContractId = c.ContractId };
        var first = await Ops.SuspendContractAsync(suspend);
        await Ops.ResumeContractAsync(new ResumeContractRequest { RequestId = Rpc.NewRequestId(), ContractId = c.ContractId });

        // The retry of the suspension answers as the first time did, and the contract stays resumed.
        var replay = await Ops.SuspendContractAsync(suspend);
        Assert.Equal(first, replay);
        Assert.Equal(ContractState.Active, (await Ops.GetContractAsync(new GetContractRequest { ContractId = c.ContractId })).Contract.State);
    }

    [Fact]
    public async Task Reuse_SameRequestIdForADifferentRequest_IsRefused()
    {
        var request = NewCreate();
        await Ops.CreateContractAsync(request);
        var different = request.Clone();
        different.DisplayName = "another deal";

        var e = await Rpc.FailsWith(StatusCode.InvalidArgument, "REQUEST_ID_REUSED", Ops.CreateContractAsync(different));
        Assert.Equal(["request_id"], e.BadFields());
        Assert.Equal(1, await ContractCount());
    }

    [Fact]
    public async Task Reuse_SameRequestIdOnAnotherMethod_IsRefused()
    {
        var id = Rpc.NewRequestId();
        await _server.OperatorAllocations.CreatePoolAsync(new CreatePoolRequest
        {
            RequestId = id, PoolId = "extra", DisplayName = "x", Region = "r", AcceleratorType = "A", CapacityUnits = 1,
        });
        var create = NewCreate();
        create.RequestId = id;
        await Rpc.FailsWith(StatusCode.InvalidArgument, "REQUEST_ID_REUSED", Ops.CreateContractAsync(create));
    }

    [Fact]
    public async Task FailedRequest_IsNotRemembered_SoTheSameIdCanSucceedLater()
    {
        var request = NewCreate();
        request.Terms.CurrencyCode = "XXX";
        await Rpc.FailsWith(StatusCode.InvalidArgument, "INVALID_FIELD", Ops.CreateContractAsync(request));
        Assert.Equal(0, await ContractCount());

        var fixedRequest = NewCreate();
        fixedRequest.RequestId = request.RequestId;
        await Ops.CreateContractAsync(fixedRequest);
        Assert.Equal(1, await ContractCount());
    }

    [Fact]
    public async Task RequestIds_AreScopedPerTenant()
    {
        // Two tenants may happen to pick the same id; neither sees the other's response.
        var id = "same-id";
        var a = NewCreate();
        a.RequestId = id;
        var b = NewCreate();
        b.RequestId = id;
        b.TenantId = "lab-b";
        var first = await Ops.CreateContractAsync(a);
        var again = await Ops.CreateContractAsync(a);
        Assert.Equal(first, again);
        await Rpc.FailsWith(StatusCode.InvalidArgument, "REQUEST_ID_REUSED", Ops.CreateContractAsync(b));
    }

    [Fact]
    public async Task Replay_AfterRestart_StillReturnsTheFirstResponse()
    {
        var request = NewCreate();
        var first = await Ops.CreateContractAsync(request);
        await _server.RestartAsync();
        var replay = await _server.OperatorContracts.CreateContractAsync(request);
        Assert.Equal(first.ToByteArray(), replay.ToByteArray());
        Assert.Equal(1, await ContractCount());
    }

    [Fact]
    public async Task RequestIds_AreKeptSevenDays_ThenForgotten()
    {
        var janitor = _server.Services.GetRequiredService<Procurement.Server.Hosting.IdempotencyJanitor>();
        var request = new CreatePoolRequest { RequestId = Rpc.NewRequestId(), PoolId = "kept", DisplayName = "x", Region = "r", AcceleratorType = "A", CapacityUnits = 1 };
        var first = await _server.OperatorAllocations.CreatePoolAsync(request);

        _server.Clock.Advance(TimeSpan.FromDays(6));
        await janitor.ForgetOnceAsync(CancellationToken.None);
        Assert.Equal(first, await _server.OperatorAllocations.CreatePoolAsync(request)); // still a replay

        _server.Clock.Advance(TimeSpan.FromDays(2));
        await janitor.ForgetOnceAsync(CancellationToken.None); // (the hourly pass, run by the fake clock, may have got there first)
        // Forgotten: the same request now runs again, and the pool it would create exists.
        await Rpc.FailsWith(StatusCode.AlreadyExists, _server.OperatorAllocations.CreatePoolAsync(request));
    }

    [Fact]
    public async Task ForgettingRequestIds_TakesTheOldestFirst_AtMostTheLimitAtATime()
    {
        var store = _server.Services.GetRequiredService<Procurement.Storage.IProcurementStore>();
        var createdAt = Enumerable.Range(1, 5).Select(i => DateTimeOffset.UnixEpoch.AddMilliseconds(i)).ToList();
        await store.WriteAsync(async s =>
        {
            foreach (var at in createdAt)
            {
                await s.Idempotency.InsertAsync(new Procurement.Storage.Repositories.IdempotencyRecord("janitor-test", $"r-{at.ToUnixTimeMilliseconds()}", "/m", "h", [1], at));
            }

            return true;
        }, CancellationToken.None);
        var cutoff = DateTimeOffset.UnixEpoch.AddMilliseconds(100);

        Assert.Equal(2, await store.WriteAsync(s => s.Idempotency.DeleteOlderThanAsync(cutoff, 2), CancellationToken.None));
        var left = await store.ReadAsync(async s => new[]
        {
            await s.Idempotency.FindAsync("janitor-test", "r-2"), await s.Idempotency.FindAsync("janitor-test", "r-3"),
        }, CancellationToken.None);
        Assert.Equal([null, "r-3"], left.Select(r => r?.RequestId));
        Assert.Equal(2, await store.WriteAsync(s => s.Idempotency.DeleteOlderThanAsync(cutoff, 2), CancellationToken.None));
        Assert.Equal(1, await store.WriteAsync(s => s.Idempotency.DeleteOlderThanAsync(cutoff, 2), CancellationToken.None));
        Assert.Equal(0, await store.WriteAsync(s => s.Idempotency.DeleteOlderThanAsync(cutoff, 2), CancellationToken.None));
    }

    [Fact]
    public async Task TheJanitor_ForgetsMoreThanOneBatchInAPass()
    {
        var store = _server.Services.GetRequiredService<Procurement.Storage.IProcurementStore>();
        var count = Procurement.Server.Hosting.IdempotencyJanitor.BatchSize + 1;
        await store.WriteAsync(async s =>
        {
            for (var i = 1; i <= count; i++)
            {
                await s.Idempotency.InsertAsync(new Procurement.Storage.Repositories.IdempotencyRecord(
                    "janitor-batches", $"r-{i}", "/m", "h", [1], DateTimeOffset.UnixEpoch.AddMilliseconds(i)));
            }

            return true;
        }, CancellationToken.None);

        await _server.Services.GetRequiredService<Procurement.Server.Hosting.IdempotencyJanitor>().ForgetOnceAsync(CancellationToken.None);

        // Oldest first, so the newest is the one a single batch would have left.
        Assert.Null(await store.ReadAsync(s => s.Idempotency.FindAsync("janitor-batches", $"r-{count}"), CancellationToken.None));
    }

    [Fact]
    public async Task ConcurrentReplays_CreateExactlyOneContract()
    {
        var request = NewCreate();
        var responses = await Task.WhenAll(Enumerable.Range(0, 16).Select(async _ => await Ops.CreateContractAsync(request)));
        Assert.Single(responses.Select(r => r.Contract.ContractId).Distinct());
        Assert.Equal(1, await ContractCount());
    }

    [Fact]
    public async Task AuditLog_RecordsEveryMutationWithItsPrincipalAndRequestId()
    {
        var c = await Fixtures.CreateContractAsync(_server);
        var activate = new ActivateContractRequest { RequestId = "activate-1", ContractId = c.ContractId };
        await Ops.ActivateContractAsync(activate);
        await Ops.ActivateContractAsync(activate); // a replay is not a second mutation
        await Rpc.FailsWith(StatusCode.FailedPrecondition,
            Ops.ResumeContractAsync(new ResumeContractRequest { RequestId = Rpc.NewRequestId(), ContractId = c.ContractId })); // nor is a failure

        var events = (await Ops.ListAuditEventsAsync(new ListAuditEventsRequest())).Events;
        Assert.Equal(
            ["CreatePool", "CreatePool", "CreateContract", "ActivateContract"],
            events.Select(e => e.Method.Split('/')[^1]));
        Assert.All(events, e => Assert.Equal(PrincipalRole.Operator, e.Role));
        Assert.All(events, e => Assert.StartsWith("key_", e.KeyId));
        var activation = events[^1];
        Assert.Equal("/procurement.v1.ContractService/ActivateContract", activation.Method);
        Assert.Equal("activate-1", activation.RequestId);
        Assert.Equal("contract", activation.ResourceType);
        Assert.Equal(c.ContractId, activation.ResourceId);
        Assert.Equal(_server.Clock.GetUtcNow(), activation.Time.ToDateTimeOffset());
        Assert.True(events.Zip(events.Skip(1)).All(p => p.First.Sequence < p.Second.Sequence));

        var filtered = await Ops.ListAuditEventsAsync(new ListAuditEventsRequest { ResourceType = "contract", ResourceId = c.ContractId });
        Assert.Equal(2, filtered.Events.Count);
    }

    [Fact]
    public async Task AuditLog_OfOneResource_PagesThroughItsEventsOnly_InOrder()
    {
        var c = await Fixtures.CreateContractAsync(_server);
        await Fixtures.CreateContractAsync(_server);
        await Ops.ActivateContractAsync(new ActivateContractRequest { RequestId = Rpc.NewRequestId(), ContractId = c.ContractId });
        await Fixtures.CreateContractAsync(_server);
        await Ops.SuspendContractAsync(new SuspendContractRequest { RequestId = Rpc.NewRequestId(), ContractId = c.ContractId, Reason = "audit" });

        var events = new List<AuditEvent>();
        var token = "";
        do
        {
            var page = await Ops.ListAuditEventsAsync(new ListAuditEventsRequest { ResourceType = "contract", ResourceId = c.ContractId, PageSize = 1, PageToken = token });
            events.AddRange(page.Events);
            token = page.NextPageToken;
        }
        while (token.Length > 0);

        Assert.Equal(["CreateContract", "ActivateContract", "SuspendContract"], events.Select(e => e.Method.Split('/')[^1]));
        Assert.All(events, e => Assert.Equal(c.ContractId, e.ResourceId));
        Assert.Equal(events.Select(e => e.Sequence).Order(), events.Select(e => e.Sequence));
    }

    [Fact]
    public async Task AuditLog_PagesWithoutLossOrRepeat()
    {
        for (var i = 0; i < 7; i++)
        {
            await Fixtures.CreateContractAsync(_server);
        }

        var sequences = new List<long>();
        var token = "";
        do
        {
            var page = await Ops.ListAuditEventsAsync(new ListAuditEventsRequest { PageSize = 2, PageToken = token });
            sequences.AddRange(page.Events.Select(e => e.Sequence));
            token = page.NextPageToken;
        }
        while (token.Length > 0);

        Assert.Equal(9, sequences.Count);
        Assert.Equal(sequences.Distinct().Order(), sequences);
    }

    [Fact]
    public async Task AuditLog_IsForOperatorsOnly()
    {
        var customer = _server.Contracts(await _server.CreateKeyAsync(Role.Customer, "lab-a"));
        await Rpc.FailsWith(StatusCode.PermissionDenied, "ROLE_NOT_ALLOWED", customer.ListAuditEventsAsync(new ListAuditEventsRequest()));
    }

    [Fact]
    public async Task Restart_KeepsContractsVersionsPoolsKeysAndAudit()
    {
        var c = await Fixtures.CreateActiveContractAsync(_server);
        await Ops.AmendContractAsync(new AmendContractRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = c.ContractId, Etag = c.Etag,
            EffectiveMonth = new BillingMonth { Year = 2026, Month = 5 }, Terms = Fixtures.Terms(_server.Clock.GetUtcNow(), h100Reserved: 500),
        });
        var before = (await Ops.GetContractAsync(new GetContractRequest { ContractId = c.ContractId })).Contract;
        var versionsBefore = await Ops.ListContractVersionsAsync(new ListContractVersionsRequest { ContractId = c.ContractId });
        var poolsBefore = await _server.OperatorAllocations.ListPoolsAsync(new ListPoolsRequest());
        var auditBefore = await Ops.ListAuditEventsAsync(new ListAuditEventsRequest());

        await _server.RestartAsync();

        Assert.Equal(before, (await _server.OperatorContracts.GetContractAsync(new GetContractRequest { ContractId = c.ContractId })).Contract);
        Assert.Equal(versionsBefore, await _server.OperatorContracts.ListContractVersionsAsync(new ListContractVersionsRequest { ContractId = c.ContractId }));
        Assert.Equal(poolsBefore, await _server.OperatorAllocations.ListPoolsAsync(new ListPoolsRequest()));
        Assert.Equal(auditBefore, await _server.OperatorContracts.ListAuditEventsAsync(new ListAuditEventsRequest()));
    }
}
