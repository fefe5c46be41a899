using Microsoft.Extensions.Options;
using Procurement.Server.Auth;

namespace Procurement.Server.Hosting;

/// <summary>Before the server takes calls: register the bootstrap operator key and seed the demo if asked.</summary>
public sealed partial class StartupTasks(IOptions<ServerOptions> options, ApiKeys keys, DemoSeeder demo, ILogger<StartupTasks> logger) : IHostedService
{
    public const int MinimumBootstrapKeyLength = 24;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        if (!string.IsNullOrEmpty(o.BootstrapOperatorKey))
        {
            if (o.BootstrapOperatorKey.Length < MinimumBootstrapKeyLength)
            {
                throw new InvalidOperationException($"PROCUREMENT_BOOTSTRAP_OPERATOR_KEY must be at least {MinimumBootstrapKeyLength} characters.");
            }

            var added = await keys.EnsureAsync(o.BootstrapOperatorKey, Role.Operator, null, "bootstrap", cancellationToken);
            Log.Bootstrap(logger, added ? "registered" : "already registered");
        }

        if (o.Demo)
        {
            await demo.SeedAsync(Console.Out, cancellationToken);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private static partial class Log
    {
        [LoggerMessage(EventId = 3101, Level = LogLevel.Information, Message = "Bootstrap operator key {Outcome}")]
        public static partial void Bootstrap(ILogger logger, string outcome);
    }
}
