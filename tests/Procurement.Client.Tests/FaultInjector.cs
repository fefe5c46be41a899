using System.Collections.Concurrent;
using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Http;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.DependencyInjection;

namespace Procurement.Client.Tests;

/// <summary>
/// A server-side fault plan: per method, fail the reply with UNAVAILABLE after the handler committed
/// (N times), fail before running it, or delay it. Counts the attempts that reached the server.
/// </summary>
public sealed class FaultInjector
{
    private readonly ConcurrentDictionary<string, int> _failAfterCommit = new();
    private readonly ConcurrentDictionary<string, int> _failBefore = new();
    private readonly ConcurrentDictionary<string, int> _attempts = new();
    private readonly ConcurrentDictionary<string, int> _abortAfterCommit = new();

    public TimeSpan Delay { get; set; }

    public string? DelayMethod { get; set; }

    public void FailAfterCommit(string method, int times) => _failAfterCommit[method] = times;

    public void FailBefore(string method, int times) => _failBefore[method] = times;

    /// <summary>Drops the connection after the handler committed, as a crashed proxy or a cut cable would.</summary>
    public void AbortAfterCommit(string method, int times) => _abortAfterCommit[method] = times;

    public int Attempts(string method) => _attempts.GetValueOrDefault(method);

    public static void Register(IServiceCollection services, FaultInjector injector)
    {
        services.AddSingleton(injector);
        services.Configure<GrpcServiceOptions>(o => o.Interceptors.Add<Interceptor>());
    }

    private bool Take(ConcurrentDictionary<string, int> plan, string method)
    {
        while (plan.TryGetValue(method, out var left) && left > 0)
        {
            if (plan.TryUpdate(method, left - 1, left))
            {
                return true;
            }
        }

        return false;
    }

    public sealed class Interceptor(FaultInjector plan) : Grpc.Core.Interceptors.Interceptor
    {
        public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
        {
            var method = context.Method[(context.Method.LastIndexOf('/') + 1)..];
            plan._attempts.AddOrUpdate(method, 1, (_, n) => n + 1);
            if (plan.Take(plan._failBefore, method))
            {
                throw new RpcException(new Status(StatusCode.Unavailable, "injected: down"));
            }

            if (plan.DelayMethod == method)
            {
                await Task.Delay(plan.Delay, context.CancellationToken);
            }

            var response = await continuation(request, context);
            if (plan.Take(plan._failAfterCommit, method))
            {
                throw new RpcException(new Status(StatusCode.Unavailable, "injected: reply lost after commit"));
            }

            if (plan.Take(plan._abortAfterCommit, method))
            {
                context.GetHttpContext().Abort();
                await Task.Delay(Timeout.Infinite, context.CancellationToken);
            }

            return response;
        }

        public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
        {
            var method = context.Method[(context.Method.LastIndexOf('/') + 1)..];
            plan._attempts.AddOrUpdate(method, 1, (_, n) => n + 1);
            var response = await continuation(requestStream, context);
            if (plan.Take(plan._failAfterCommit, method))
            {
                throw new RpcException(new Status(StatusCode.Unavailable, "injected: reply lost after commit"));
            }

            return response;
        }
    }
}
