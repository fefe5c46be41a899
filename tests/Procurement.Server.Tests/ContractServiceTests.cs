using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Server.Auth;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

public sealed class ContractServiceTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    public async Task InitializeAsync()
    {
        _server = await ServerHarness.StartAsync();
        await Fixtures.CreatePoolsAsync(_server);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private ContractService.ContractServiceClient Ops => _server.OperatorContracts;

    [Fact]
    public async Task CreateContract_ValidTerms_ReturnsDraftWithTheSameTerms()
    {
        var terms = Fixtures.Terms(_server.Clock.GetUtcNow());
        var contract = await Fixtures.CreateContractAsync(_server, terms: terms);

        Assert.StartsWith("ctr_", contract.ContractId);
        Assert.Equal(ContractState.Draft, contract.State);
        Assert.Equal("lab-a", contract.TenantId);
        Assert.Equal(1, contract.TermsVersion);
        Assert.Equal(terms, contract.Terms);
        Assert.False(string.IsNullOrEmpty(contract.Etag));

        var read = (await Ops.GetContractAsync(new GetContractRequest { ContractId = contract.ContractId })).Contract;
        Assert.Equal(contract, read);
    }

    [Fact]
    public async Task CreateContract_ManyMistakes_NamesEveryBadField()
    {
        var terms = Fixtures.Terms(_server.Clock.GetUtcNow());
        terms.EndTime = terms.StartTime;
        terms.Entitlements.Add(new PoolEntitlement { PoolId = "missing", ReservedUnits = 1 });
        terms.RateCard[0].Mode = PricingMode.Unspecified;
        terms.RateCard[0].Tiers[0].UpToGpuHours = "lots";
        terms.RateCard[1].Tiers[0].UnitPrice.CurrencyCode = "EUR";
        terms.IndexLinkage.PassThrough = "1.5";
        terms.Sla.AvailabilityTargetPercent = "0";

        var e = await Rpc.FailsWith(StatusCode.InvalidArgument, "INVALID_FIELD", Ops.CreateContractAsync(new CreateContractRequest
        {
            RequestId = Rpc.NewRequestId(), TenantId = "Not A Tenant", DisplayName = "x", Terms = terms,
        }));

        Assert.Equal(
            new[]
            {
                "tenant_id", "terms.rate_card[0].mode", "terms.rate_card[0].tiers[0].up_to_gpu_hours",
                "terms.rate_card[1].tiers[0].unit_price.currency_code", "terms.end_time", "terms.entitlements[2].pool_id",
                "terms.index_linkage.pass_through", "terms.sla.availability_target_percent",
            }.Order(),
            e.BadFields().Order());
    }

    [Fact]
    public async Task CreateContract_WithoutTerms_NamesTerms()
    {
        var e = await Rpc.FailsWith(StatusCode.InvalidArgument, Ops.CreateContractAsync(new CreateContractRequest
        {
            RequestId = Rpc.NewRequestId(), TenantId = "lab-a", DisplayName = "x",
        }));
        Assert.Contains("terms", e.BadFields());
    }

    [Fact]
    public async Task CreateContract_WithoutRequestId_NamesRequestId()
    {
        var e = await Rpc.FailsWith(StatusCode.InvalidArgument, Ops.CreateContractAsync(new CreateContractRequest
        {
            TenantId = "lab-a", DisplayName = "x", Terms = Fixtures.Terms(_server.Clock.GetUtcNow()),
        }));
        Assert.Equal(["request_id"], e.BadFields());
    }

    [Fact]
    public async Task GetContract_Unknown_IsNotFound()
    {
        var e = await Rpc.FailsWith(StatusCode.NotFound, "NOT_FOUND", Ops.GetContractAsync(new GetContractRequest { ContractId = "ctr_nope" }));
        Assert.Equal("ctr_nope", e.Metadata()["resource_id"]);
    }

    [Fact]
    public async Task UpdateContract_CurrentEtag_ReplacesTermsAndChangesEtag()
    {
        var draft = await Fixtures.CreateContractAsync(_server);
        var terms = Fixtures.Terms(_server.Clock.GetUtcNow(), h100Reserved: 10);
        var updated = (await Ops.UpdateContractAsync(new UpdateContractRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = draft.ContractId, Etag = draft.Etag, DisplayName = "Renamed", Terms = terms,
        })).Contract;

        Assert.Equal("Renamed", updated.DisplayName);
        Assert.Equal(10, updated.Terms.Entitlements[0].ReservedUnits);
        Assert.NotEqual(draft.Etag, updated.Etag);
        Assert.Equal(1, updated.LatestTermsVersion);
    }

    [Fact]
    public async Task UpdateContract_StaleEtag_IsAborted()
    {
        var draft = await Fixtures.CreateContractAsync(_server);
        var request = new UpdateContractRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = draft.ContractId, Etag = draft.Etag, DisplayName = "First",
            Terms = Fixtures.Terms(_server.Clock.GetUtcNow()),
        };
        await Ops.UpdateContractAsync(request);

        var second = request.Clone();
        second.RequestId = Rpc.NewRequestId();
        second.DisplayName = "Second";
        await Rpc.FailsWith(StatusCode.Aborted, "ETAG_MISMATCH", Ops.UpdateContractAsync(second));
        Assert.Equal("First", (await Ops.GetContractAsync(new GetContractRequest { ContractId = draft.ContractId })).Contract.DisplayName);
    }

    [Fact]
    public async Task UpdateContract_ActiveContract_IsFailedPrecondition()
    {
        var active = await Fixtures.CreateActiveContractAsync(_server);
        await Rpc.FailsWith(StatusCode.FailedPrecondition, "INVALID_STATE", Ops.UpdateContractAsync(new UpdateContractRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = active.ContractId, Etag = active.Etag, DisplayName = "x",
            Terms = Fixtures.Terms(_server.Clock.GetUtcNow()),
        }));
    }

    [Fact]
    public async Task ActivateContract_ReservationsFit_BecomesActive()
    {
        var active = await Fixtures.CreateActiveContractAsync(_server);
        Assert.Equal(ContractState.Active, active.State);
        Assert.Equal(Timestamp.FromDateTimeOffset(_server.Clock.GetUtcNow()), active.ActivateTime);
    }

    [Fact]
    public async Task ActivateContract_ReservationsExceedCapacity_IsRefusedNamingThePool()
    {
        await Fixtures.CreateActiveContractAsync(_server, "lab-a"); // reserves 600 of 1000 H100, 200 of 500 H200
        var second = await Fixtures.CreateContractAsync(_server, "lab-b", Fixtures.Terms(_server.Clock.GetUtcNow(), h100Reserved: 401, h200Reserved: 300));

        var e = await Rpc.FailsWith(StatusCode.FailedPrecondition, "RESERVATIONS_EXCEED_CAPACITY",
            Ops.ActivateContractAsync(new ActivateContractRequest { RequestId = Rpc.NewRequestId(), ContractId = second.ContractId }));

        Assert.Contains("pool 'h100' has capacity 1000 but 1001 units would be reserved", e.Status.Detail);
        Assert.Equal(["pools/h100"], e.PreconditionSubjects());
        Assert.Equal("1000", e.Metadata()["h100.capacity_units"]);
        Assert.Equal("1001", e.Metadata()["h100.reserved_units"]);
        Assert.Equal(ContractState.Draft, (await Ops.GetContractAsync(new GetContractRequest { ContractId = second.ContractId })).Contract.State);
    }

    [Fact]
    public async Task ActivateContract_ExactlyFillingThePool_IsAccepted()
    {
        await Fixtures.CreateActiveContractAsync(_server, "lab-a");
        var second = await Fixtures.CreateActiveContractAsync(_server, "lab-b", Fixtures.Terms(_server.Clock.GetUtcNow(), h100Reserved: 400, h200Reserved: 300));
        Assert.Equal(ContractState.Active, second.State);
    }

    [Fact]
    public async Task ActivateContract_TerminatedContractsNoLongerHoldReservations()
    {
        var first = await Fixtures.CreateActiveContractAsync(_server, "lab-a");
        await Ops.TerminateContractAsync(new TerminateContractRequest { RequestId = Rpc.NewRequestId(), ContractId = first.ContractId, Reason = "ended" });
        var second = await Fixtures.CreateActiveContractAsync(_server, "lab-b", Fixtures.Terms(_server.Clock.GetUtcNow(), h100Reserved: 1000, h200Reserved: 500));
        Assert.Equal(ContractState.Active, second.State);
    }

    [Fact]
    public async Task SuspendResumeTerminate_FollowTheStateMachine()
    {
        var c = await Fixtures.CreateActiveContractAsync(_server);
        var suspended = (await Ops.SuspendContractAsync(new SuspendContractRequest { RequestId = Rpc.NewRequestId(), ContractId = c.ContractId, Reason = "late payment" })).Contract;
        Assert.Equal(ContractState.Suspended, suspended.State);
        Assert.Equal("late payment", suspended.StateReason);

        await Rpc.FailsWith(StatusCode.FailedPrecondition, "INVALID_STATE",
            Ops.SuspendContractAsync(new SuspendContractRequest { RequestId = Rpc.NewRequestId(), ContractId = c.ContractId }));

        var resumed = (await Ops.ResumeContractAsync(new ResumeContractRequest { RequestId = Rpc.NewRequestId(), ContractId = c.ContractId, Etag = suspended.Etag })).Contract;
        Assert.Equal(ContractState.Active, resumed.State);

        await Rpc.FailsWith(StatusCode.Aborted, "ETAG_MISMATCH",
            Ops.TerminateContractAsync(new TerminateContractRequest { RequestId = Rpc.NewRequestId(), ContractId = c.ContractId, Etag = suspended.Etag }));

        var terminated = (await Ops.TerminateContractAsync(new TerminateContractRequest { RequestId = Rpc.NewRequestId(), ContractId = c.ContractId, Reason = "breach" })).Contract;
        Assert.Equal(ContractState.Terminated, terminated.State);
        Assert.NotNull(terminated.TerminateTime);

        await Rpc.FailsWith(StatusCode.FailedPrecondition, "INVALID_STATE",
            Ops.ResumeContractAsync(new ResumeContractRequest { RequestId = Rpc.NewRequestId(), ContractId = c.ContractId }));
    }

    [Fact]
    public async Task GetContract_PastTermEnd_ReadsExpired()
    {
        var c = await Fixtures.CreateActiveContractAsync(_server);
        _server.Clock.SetUtcNow(c.Terms.EndTime.ToDateTimeOffset());
        Assert.Equal(ContractState.Expired, (await Ops.GetContractAsync(new GetContractRequest { ContractId = c.ContractId })).Contract.State);
        await Rpc.FailsWith(StatusCode.FailedPrecondition, "INVALID_STATE",
            Ops.SuspendContractAsync(new SuspendContractRequest { RequestId = Rpc.NewRequestId(), ContractId = c.ContractId }));
    }

    [Fact]
    public async Task AmendContract_NextMonth_AddsAVersionThatAppliesFromThatMonth()
    {
        var c = await Fixtures.CreateActiveContractAsync(_server); // clock: 2026-03-10
        var amended = Fixtures.Terms(_server.Clock.GetUtcNow(), h100Reserved: 700);
        var response = await Ops.AmendContractAsync(new AmendContractRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = c.ContractId, Etag = c.Etag,
            EffectiveMonth = new BillingMonth { Year = 2026, Month = 4 }, Terms = amended,
        });

        Assert.Equal(2, response.Version.Version);
        Assert.Equal(new DateTimeOffset(2026, 4, 1, 0, 0, 0, TimeSpan.Zero), response.Version.EffectiveTime.ToDateTimeOffset());
        // March still runs on version 1...
        Assert.Equal(1, response.Contract.TermsVersion);
        Assert.Equal(2, response.Contract.LatestTermsVersion);
        Assert.Equal(600, response.Contract.Terms.Entitlements[0].ReservedUnits);

        // ...and from April version 2 applies.
        _server.Clock.SetUtcNow(new DateTimeOffset(2026, 4, 1, 0, 0, 0, TimeSpan.Zero));
        var april = (await Ops.GetContractAsync(new GetContractRequest { ContractId = c.ContractId })).Contract;
        Assert.Equal(2, april.TermsVersion);
        Assert.Equal(700, april.Terms.Entitlements[0].ReservedUnits);

        var versions = await Ops.ListContractVersionsAsync(new ListContractVersionsRequest { ContractId = c.ContractId });
        Assert.Equal([1, 2], versions.Versions.Select(v => v.Version));
        Assert.Equal(600, versions.Versions[0].Terms.Entitlements[0].ReservedUnits);
    }

    [Fact]
    public async Task AmendContract_CurrentMonthAfterTheFirst_IsRefused()
    {
        var c = await Fixtures.CreateActiveContractAsync(_server);
        _server.Clock.SetUtcNow(new DateTimeOffset(2026, 5, 2, 0, 0, 0, TimeSpan.Zero));
        var e = await Rpc.FailsWith(StatusCode.FailedPrecondition, "AMENDMENT_NOT_ALLOWED", Ops.AmendContractAsync(new AmendContractRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = c.ContractId, Etag = c.Etag,
            EffectiveMonth = new BillingMonth { Year = 2026, Month = 5 }, Terms = Fixtures.Terms(new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero)),
        }));
        Assert.Equal(["effective_month"], e.BadFields());
    }

    [Fact]
    public async Task AmendContract_CurrentMonthInTheFirstMonth_AppliesAtOnce()
    {
        var c = await Fixtures.CreateActiveContractAsync(_server);
        var response = await Ops.AmendContractAsync(new AmendContractRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = c.ContractId, Etag = c.Etag,
            EffectiveMonth = new BillingMonth { Year = 2026, Month = 3 }, Terms = Fixtures.Terms(_server.Clock.GetUtcNow(), h100Reserved: 650),
        });
        Assert.Equal(2, response.Contract.TermsVersion);
        Assert.Equal(650, response.Contract.Terms.Entitlements[0].ReservedUnits);
    }

    [Fact]
    public async Task AmendContract_RaisingReservationsPastCapacity_IsRefusedNamingThePool()
    {
        var c = await Fixtures.CreateActiveContractAsync(_server);
        var e = await Rpc.FailsWith(StatusCode.FailedPrecondition, "RESERVATIONS_EXCEED_CAPACITY", Ops.AmendContractAsync(new AmendContractRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = c.ContractId, Etag = c.Etag,
            EffectiveMonth = new BillingMonth { Year = 2026, Month = 7 }, Terms = Fixtures.Terms(_server.Clock.GetUtcNow(), h200Reserved: 501),
        }));
        Assert.Equal(["pools/h200"], e.PreconditionSubjects());
        Assert.Equal(1, (await Ops.GetContractAsync(new GetContractRequest { ContractId = c.ContractId })).Contract.LatestTermsVersion);
    }

    [Fact]
    public async Task AmendContract_StaleEtag_IsAborted()
    {
        var c = await Fixtures.CreateActiveContractAsync(_server);
        await Ops.SuspendContractAsync(new SuspendContractRequest { RequestId = Rpc.NewRequestId(), ContractId = c.ContractId });
        await Ops.ResumeContractAsync(new ResumeContractRequest { RequestId = Rpc.NewRequestId(), ContractId = c.ContractId });
        await Rpc.FailsWith(StatusCode.Aborted, "ETAG_MISMATCH", Ops.AmendContractAsync(new AmendContractRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = c.ContractId, Etag = c.Etag,
            EffectiveMonth = new BillingMonth { Year = 2026, Month = 6 }, Terms = Fixtures.Terms(_server.Clock.GetUtcNow()),
        }));
    }

    [Fact]
    public async Task ListContracts_FiltersByTenantAndState()
    {
        var a = await Fixtures.CreateActiveContractAsync(_server, "lab-a", Fixtures.Terms(_server.Clock.GetUtcNow(), 10, 10));
        var b = await Fixtures.CreateContractAsync(_server, "lab-b", Fixtures.Terms(_server.Clock.GetUtcNow(), 10, 10));
        var shortTerms = Fixtures.Terms(_server.Clock.GetUtcNow(), 10, 10);
        shortTerms.EndTime = Timestamp.FromDateTimeOffset(new DateTimeOffset(2026, 4, 1, 0, 0, 0, TimeSpan.Zero));
        var c = await Fixtures.CreateActiveContractAsync(_server, "lab-a", shortTerms);

        async Task<string[]> Ids(string tenant, ContractState state) =>
            (await Ops.ListContractsAsync(new ListContractsRequest { TenantId = tenant, State = state })).Contracts.Select(x => x.ContractId).ToArray();

        Assert.Equal([a.ContractId, c.ContractId], await Ids("lab-a", ContractState.Unspecified));
        Assert.Equal([b.ContractId], await Ids("", ContractState.Draft));
        Assert.Equal([a.ContractId, c.ContractId], await Ids("", ContractState.Active));

        _server.Clock.SetUtcNow(new DateTimeOffset(2026, 4, 1, 0, 0, 0, TimeSpan.Zero));
        Assert.Equal([a.ContractId], await Ids("", ContractState.Active));
        Assert.Equal([c.ContractId], await Ids("", ContractState.Expired));
    }

    [Fact]
    public async Task ListContracts_ManyPages_ReturnsEveryContractOnce()
    {
        var created = new List<string>();
        for (var i = 0; i < 23; i++)
        {
            created.Add((await Fixtures.CreateContractAsync(_server, $"lab-{i % 3}")).ContractId);
        }

        var seen = new List<string>();
        var token = "";
        var pages = 0;
        do
        {
            var page = await Ops.ListContractsAsync(new ListContractsRequest { PageSize = 5, PageToken = token });
            Assert.True(page.Contracts.Count <= 5);
            seen.AddRange(page.Contracts.Select(c => c.ContractId));
            token = page.NextPageToken;
            pages++;

            // Contracts created while paging appear on a later page, never twice.
            if (pages == 2)
            {
                created.Add((await Fixtures.CreateContractAsync(_server, "lab-late")).ContractId);
            }
        }
        while (token.Length > 0);

        Assert.Equal(created, seen);
        Assert.Equal(5, pages);
    }

    [Fact]
    public async Task ListContracts_TokenWithOtherFilters_IsRefused()
    {
        for (var i = 0; i < 3; i++)
        {
            await Fixtures.CreateContractAsync(_server);
        }

        var page = await Ops.ListContractsAsync(new ListContractsRequest { PageSize = 1 });
        var e = await Rpc.FailsWith(StatusCode.InvalidArgument, "INVALID_PAGE_TOKEN",
            Ops.ListContractsAsync(new ListContractsRequest { PageSize = 1, PageToken = page.NextPageToken, TenantId = "lab-a" }));
        Assert.Equal(["page_token"], e.BadFields());
        await Rpc.FailsWith(StatusCode.InvalidArgument, "INVALID_PAGE_TOKEN", Ops.ListContractsAsync(new ListContractsRequest { PageToken = "garbage!" }));
        await Rpc.FailsWith(StatusCode.InvalidArgument, Ops.ListContractsAsync(new ListContractsRequest { PageSize = -1 }));
    }

    [Fact]
    public async Task Customer_SeesOnlyItsOwnTenant()
    {
        var mine = await Fixtures.CreateContractAsync(_server, "lab-a");
        var theirs = await Fixtures.CreateContractAsync(_server, "lab-b");
        var customer = _server.Contracts(await _server.CreateKeyAsync(Role.Customer, "lab-a"));

        Assert.Equal(mine.ContractId, (await customer.GetContractAsync(new GetContractRequest { ContractId = mine.ContractId })).Contract.ContractId);
        var hidden = await Rpc.FailsWith(StatusCode.NotFound, "NOT_FOUND", customer.GetContractAsync(new GetContractRequest { ContractId = theirs.ContractId }));
        var missing = await Rpc.FailsWith(StatusCode.NotFound, "NOT_FOUND", customer.GetContractAsync(new GetContractRequest { ContractId = "ctr_0000000000000000" }));
        Assert.Equal(missing.Status.Detail.Replace("ctr_0000000000000000", "ID"), hidden.Status.Detail.Replace(theirs.ContractId, "ID"));

        Assert.Equal([mine.ContractId], (await customer.ListContractsAsync(new ListContractsRequest())).Contracts.Select(c => c.ContractId));
        Assert.Empty((await customer.ListContractsAsync(new ListContractsRequest { TenantId = "lab-b" })).Contracts);
        await Rpc.FailsWith(StatusCode.NotFound, customer.ListContractVersionsAsync(new ListContractVersionsRequest { ContractId = theirs.ContractId }));
    }
}
