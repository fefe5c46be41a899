using Grpc.Net.ClientFactory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Procurement.Api.V1;
using Procurement.Client.Resilience;

namespace Procurement.Client;

public static class ServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="ContractsClient"/>, <see cref="AllocationsClient"/> and <see cref="SlaClient"/>
    /// on Grpc.Net.ClientFactory, sharing one <see cref="CallRunner"/> (so one breaker per call kind).
    /// </summary>
    public static IServiceCollection AddProcurementClient(this IServiceCollection services, Action<ProcurementClientOptions> configure)
    {
        services.AddOptions<ProcurementClientOptions>().Configure(configure);
        services.TryAddSingleton(sp => new CallRunner(sp.GetRequiredService<IOptions<ProcurementClientOptions>>().Value, sp.GetService<ILoggerFactory>()));
        AddStub<ContractService.ContractServiceClient>(services);
        AddStub<AllocationService.AllocationServiceClient>(services);
        AddStub<SlaService.SlaServiceClient>(services);
        services.TryAddTransient(sp => new ContractsClient(sp.GetRequiredService<ContractService.ContractServiceClient>(), sp.GetRequiredService<CallRunner>()));
        services.TryAddTransient(sp => new AllocationsClient(sp.GetRequiredService<AllocationService.AllocationServiceClient>(), sp.GetRequiredService<CallRunner>()));
        services.TryAddTransient(sp => new SlaClient(sp.GetRequiredService<SlaService.SlaServiceClient>(), sp.GetRequiredService<CallRunner>()));
        return services;
    }

    private static void AddStub<TClient>(IServiceCollection services)
        where TClient : class =>
        services.AddGrpcClient<TClient>((sp, o) => o.Address = sp.GetRequiredService<IOptions<ProcurementClientOptions>>().Value.Endpoint)
            // The same connection settings as ProcurementClient.Create: keep-alive pings, several HTTP/2 connections.
            .ConfigurePrimaryHttpMessageHandler(ProcurementClient.Handler)
            // gRPC's own retries stay off (Polly retries); dns:/// balances round-robin.
            .ConfigureChannel((sp, channel) => ProcurementClient.Apply(sp.GetRequiredService<IOptions<ProcurementClientOptions>>().Value, channel))
            .AddInterceptor(InterceptorScope.Client, sp => new ApiKeyInterceptor(sp.GetRequiredService<IOptions<ProcurementClientOptions>>().Value.ApiKey));
}
