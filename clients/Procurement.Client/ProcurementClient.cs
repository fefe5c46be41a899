using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;
using Microsoft.Extensions.Logging;
using Procurement.Api.V1;
using Procurement.Client.Resilience;

namespace Procurement.Client;

/// <summary>
/// The three typed clients over one channel, for use without dependency injection:
/// <code>using var client = ProcurementClient.Create(new ProcurementClientOptions { Endpoint = new("http://127.0.0.1:5080"), ApiKey = key });</code>
/// </summary>
public sealed class ProcurementClient : IDisposable
{
    private readonly GrpcChannel _channel;

    private ProcurementClient(GrpcChannel channel, CallInvoker invoker, CallRunner runner)
    {
        _channel = channel;
        Runner = runner;
        Contracts = new ContractsClient(new ContractService.ContractServiceClient(invoker), runner);
        Allocations = new AllocationsClient(new AllocationService.AllocationServiceClient(invoker), runner);
        Sla = new SlaClient(new SlaService.SlaServiceClient(invoker), runner);
    }

    public ContractsClient Contracts { get; }

    public AllocationsClient Allocations { get; }

    public SlaClient Sla { get; }

    public CallRunner Runner { get; }

    public static ProcurementClient Create(ProcurementClientOptions options, ILoggerFactory? loggerFactory = null, HttpMessageHandler? handler = null)
    {
        var runner = new CallRunner(options, loggerFactory);
        var channel = GrpcChannel.ForAddress(options.Endpoint, ChannelOptions(options, handler, loggerFactory));
        return new ProcurementClient(channel, channel.Intercept(new ApiKeyInterceptor(options.ApiKey)), runner);
    }

    /// <summary>
    /// gRPC's own retries stay off (no retry policy in the service config), so the Polly pipeline is the
    /// only thing that retries; cancellation by the caller surfaces as <see cref="OperationCanceledException"/>.
    /// A <c>dns:///</c> endpoint balances round-robin over the addresses it resolves to.
    /// </summary>
    internal static GrpcChannelOptions ChannelOptions(ProcurementClientOptions options, HttpMessageHandler? handler, ILoggerFactory? loggerFactory)
    {
        var channel = new GrpcChannelOptions
        {
            HttpHandler = handler ?? Handler(),
            LoggerFactory = loggerFactory,
            DisposeHttpClient = true,
        };
        Apply(options, channel);
        return channel;
    }

    /// <summary>What every channel of these options gets, with or without dependency injection.</summary>
    internal static void Apply(ProcurementClientOptions options, GrpcChannelOptions channel)
    {
        var resolved = options.Endpoint.Scheme is "dns" or "static";
        channel.ServiceConfig = resolved ? new ServiceConfig { LoadBalancingConfigs = { new RoundRobinConfig() } } : null;
        channel.Credentials = resolved ? options.UseTls ? ChannelCredentials.SecureSsl : ChannelCredentials.Insecure : null;
        channel.MaxRetryAttempts = 0;
        channel.ThrowOperationCanceledOnCancellation = true;
        options.ConfigureChannel?.Invoke(channel);
    }

    /// <summary>The connection settings every channel gets, with or without dependency injection.</summary>
    internal static SocketsHttpHandler Handler() => new()
    {
        EnableMultipleHttp2Connections = true,
        PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        KeepAlivePingDelay = TimeSpan.FromSeconds(60),
        KeepAlivePingTimeout = TimeSpan.FromSeconds(30),
    };

    public void Dispose() => _channel.Dispose();
}

/// <summary>
/// Adds <c>authorization: Bearer …</c> to every call (works with and without TLS), and the W3C trace
/// context of the current attempt, so the server's spans join the caller's trace.
/// </summary>
public sealed class ApiKeyInterceptor(string? apiKey) : Interceptor
{
    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncUnaryCallContinuation<TRequest, TResponse> continuation) =>
        continuation(request, WithKey(context));

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncServerStreamingCallContinuation<TRequest, TResponse> continuation) =>
        continuation(request, WithKey(context));

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context, AsyncClientStreamingCallContinuation<TRequest, TResponse> continuation) =>
        continuation(WithKey(context));

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context, AsyncDuplexStreamingCallContinuation<TRequest, TResponse> continuation) =>
        continuation(WithKey(context));

    private ClientInterceptorContext<TRequest, TResponse> WithKey<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context)
        where TRequest : class
        where TResponse : class
    {
        var activity = System.Diagnostics.Activity.Current;
        if (string.IsNullOrEmpty(apiKey) && activity is null)
        {
            return context;
        }

        var headers = context.Options.Headers ?? [];
        if (!string.IsNullOrEmpty(apiKey))
        {
            headers.Add("authorization", $"Bearer {apiKey}");
        }

        if (activity is not null)
        {
            activity.SetTag("rpc.method", context.Method.FullName);
            System.Diagnostics.DistributedContextPropagator.Current.Inject(activity, headers, static (carrier, name, value) =>
            {
                var metadata = (Metadata)carrier!;
                if (metadata.Get(name) is null && value is not null)
                {
                    metadata.Add(name, value);
                }
            });
        }

        return new ClientInterceptorContext<TRequest, TResponse>(context.Method, context.Host, context.Options.WithHeaders(headers));
    }
}
