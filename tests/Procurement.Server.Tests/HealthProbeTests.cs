using Grpc.Health.V1;
using Microsoft.Extensions.DependencyInjection;
using Procurement.Server.Hosting;
using Procurement.Storage;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

/// <summary>Liveness says the process serves; readiness adds storage, so an outage makes replicas unready, never restarts them.</summary>
public sealed class HealthProbeTests
{
    [Fact]
    public async Task WithStorageFailing_ReadinessIsNotServing_LivenessIsServing()
    {
        var outage = new Outage();
        await using var server = await ServerHarness.StartAsync(configure: services =>
        {
            var real = services.Single(d => d.ServiceType == typeof(IProcurementStore));
            services.Remove(real);
            services.AddSingleton<IProcurementStore>(sp => new FailingReads((IProcurementStore)real.ImplementationFactory!(sp), outage));
        });
        var health = new Health.HealthClient(server.Channel);

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new() { Service = HealthServices.Readiness })).Status);
        outage.Down = true;
        await Task.Delay(1100); // the database check reuses its answer for a second

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, (await health.CheckAsync(new() { Service = HealthServices.Readiness })).Status);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, (await health.CheckAsync(new() { Service = "" })).Status);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new() { Service = HealthServices.Liveness })).Status);
    }

    private sealed class Outage
    {
        public volatile bool Down;
    }

    /// <summary>The real store, whose reads fail like a database that does not answer while the outage lasts.</summary>
    private sealed class FailingReads(IProcurementStore inner, Outage outage) : IProcurementStore, IAsyncDisposable
    {
        public Task<T> ReadAsync<T>(Func<IStoreSession, Task<T>> read, CancellationToken cancellationToken) =>
            outage.Down ? throw new StorageUnavailableException(new IOException("the database does not answer")) : inner.ReadAsync(read, cancellationToken);

        public Task<T> WriteAsync<T>(Func<IStoreSession, Task<T>> unitOfWork, CancellationToken cancellationToken) => inner.WriteAsync(unitOfWork, cancellationToken);

        public Task NextCommit => inner.NextCommit;

        public ValueTask DisposeAsync() => inner is IAsyncDisposable d ? d.DisposeAsync() : ValueTask.CompletedTask;
    }
}
