using Microsoft.Extensions.Diagnostics.HealthChecks;
using Procurement.Storage;

namespace Procurement.Server.Hosting;

/// <summary>Healthy when the database answers a read; feeds the standard gRPC health service.</summary>
public sealed class DatabaseHealthCheck(IProcurementStore store) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await store.ReadAsync(s => s.Pools.ListAsync("", 1), cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (Exception ex)
        {
            return HealthCheckResult.Unhealthy("The database does not answer.", ex);
        }
    }
}
