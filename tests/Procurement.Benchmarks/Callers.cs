using Grpc.Core;
using Grpc.Net.Client;
using Procurement.Api.V1;
using Procurement.Client;

namespace Procurement.Benchmarks;

/// <summary>What the admission rows call: a request, its release, and a cached read.</summary>
public interface IAdmissionCaller
{
    Task<string> RequestAsync(string contractId, string poolId);

    Task ReleaseAsync(string allocationId);

    Task ReadPoolAsync(string poolId);
}

/// <summary>
/// The generated stub on one HTTP/2 connection, with the key header and a UUIDv7 request id per
/// mutation: as little client as a real caller needs, as the read rows use h2load. The benchmark
/// shares two cores with the server, so a heavier client would take them from the service it measures.
/// </summary>
public sealed class StubCaller : IAdmissionCaller, IDisposable
{
    private readonly GrpcChannel _channel;
    private readonly AllocationService.AllocationServiceClient _stub;
    private readonly Metadata _headers;

    public StubCaller(Uri endpoint, string apiKey)
    {
        _channel = GrpcChannel.ForAddress(endpoint);
        _stub = new AllocationService.AllocationServiceClient(_channel);
        _headers = new Metadata { { "authorization", $"Bearer {apiKey}" } };
    }

    public async Task<string> RequestAsync(string contractId, string poolId) =>
        (await _stub.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Guid.CreateVersion7().ToString(), ContractId = contractId, PoolId = poolId, Units = 1,
        }, _headers)).Allocation.AllocationId;

    public async Task ReleaseAsync(string allocationId) =>
        await _stub.ReleaseAllocationAsync(new ReleaseAllocationRequest { RequestId = Guid.CreateVersion7().ToString(), AllocationId = allocationId }, _headers);

    public async Task ReadPoolAsync(string poolId) =>
        await _stub.GetPoolStatusAsync(new GetPoolStatusRequest { PoolId = poolId }, _headers);

    public void Dispose() => _channel.Dispose();
}

/// <summary>The same calls through <see cref="ProcurementClient"/>: its Polly pipelines, deadlines and error mapping.</summary>
public sealed class LibraryCaller(ProcurementClient client) : IAdmissionCaller
{
    public async Task<string> RequestAsync(string contractId, string poolId) =>
        (await client.Allocations.RequestAsync(new RequestAllocationRequest { ContractId = contractId, PoolId = poolId, Units = 1 })).Allocation.AllocationId;

    public Task ReleaseAsync(string allocationId) => client.Allocations.ReleaseAsync(allocationId);

    public Task ReadPoolAsync(string poolId) => client.Allocations.GetPoolStatusAsync(poolId);
}
