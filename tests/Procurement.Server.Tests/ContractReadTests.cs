using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Procurement.Api.V1;
using Procurement.Server.Auth;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

/// <summary>
/// GetContract always answers what a fresh read would, though the server reuses an answer while
/// nothing has committed: tenants stay apart, and a change or a term's end shows at once.
/// </summary>
public sealed class ContractReadTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    public async Task InitializeAsync()
    {
        // An hour before a month's end, so moving the clock gives the request-id janitor nothing to delete.
        _server = await ServerHarness.StartAsync(new DateTimeOffset(2026, 3, 31, 22, 0, 0, TimeSpan.Zero));
        await Fixtures.CreatePoolsAsync(_server);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static async Task<Contract> GetAsync(ContractService.ContractServiceClient client, string id) =>
        (await client.GetContractAsync(new GetContractRequest { ContractId = id })).Contract;

    [Fact]
    public async Task AContractReadByTheOperator_IsStillHiddenFromOtherTenants()
    {
        var k = await Fixtures.CreateActiveContractAsync(_server, "lab-a");
        var owner = _server.Contracts(await _server.CreateKeyAsync(Role.Customer, "lab-a"));
        var other = _server.Contracts(await _server.CreateKeyAsync(Role.Customer, "lab-b"));
        await GetAsync(_server.OperatorContracts, k.ContractId);
        await GetAsync(_server.OperatorContracts, k.ContractId);

        Assert.Equal(k.ContractId, (await GetAsync(owner, k.ContractId)).ContractId);
        await Rpc.FailsWith(StatusCode.NotFound, other.GetContractAsync(new GetContractRequest { ContractId = k.ContractId }));
    }

    [Fact]
    public async Task AChange_ShowsInTheNextRead()
    {
        var k = await Fixtures.CreateActiveContractAsync(_server, "lab-a");
        Assert.Equal(ContractState.Active, (await GetAsync(_server.OperatorContracts, k.ContractId)).State);

        await _server.OperatorContracts.SuspendContractAsync(new SuspendContractRequest { RequestId = Rpc.NewRequestId(), ContractId = k.ContractId });

        Assert.Equal(ContractState.Suspended, (await GetAsync(_server.OperatorContracts, k.ContractId)).State);
    }

    [Fact]
    public async Task ATermThatEnds_ShowsAsExpiredThoughNothingWasWritten()
    {
        var terms = Fixtures.Terms(_server.Clock.GetUtcNow());
        terms.EndTime = Timestamp.FromDateTimeOffset(_server.Clock.GetUtcNow().AddHours(1));
        var k = await Fixtures.CreateActiveContractAsync(_server, "lab-a", terms);
        Assert.Equal(ContractState.Active, (await GetAsync(_server.OperatorContracts, k.ContractId)).State);
        Assert.Equal(ContractState.Active, (await GetAsync(_server.OperatorContracts, k.ContractId)).State);

        _server.Clock.Advance(TimeSpan.FromHours(2));

        Assert.Equal(ContractState.Expired, (await GetAsync(_server.OperatorContracts, k.ContractId)).State);
    }
}
